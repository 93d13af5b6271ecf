package diagnostics

import (
	"context"
	"fmt"
	"io"
	"path"

	corev1 "k8s.io/api/core/v1"
)

// logRef is one container log to read.
type logRef struct {
	namespace, pod, container string
	previous                  bool
}

func (r logRef) file() string {
	name := r.container + ".log"
	if r.previous {
		name = r.container + ".previous.log"
	}
	return path.Join("logs", r.namespace, r.pod, name)
}

// logsOf lists the logs of a pod worth reading: the current one of every
// container that ran, and the previous one of every container that
// restarted, init containers first.
func logsOf(p corev1.Pod) []logRef {
	var refs []logRef
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range statuses {
			ref := logRef{namespace: p.Namespace, pod: p.Name, container: s.Name}
			// A waiting container that never ran has no log; one that ran
			// before is served its last run's log.
			if s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil {
				refs = append(refs, ref)
			}
			if s.RestartCount > 0 && s.LastTerminationState.Terminated != nil {
				ref.previous = true
				refs = append(refs, ref)
			}
		}
	}
	return refs
}

// addLogs adds the logs of pods until the total limit or the context ends.
func (c *collector) addLogs(ctx context.Context, pods []corev1.Pod) {
	var refs []logRef
	for _, p := range pods {
		refs = append(refs, logsOf(p)...)
	}
	cut := 0
	for i, r := range refs {
		if c.werr != nil {
			return
		}
		if ctx.Err() != nil {
			c.fail("%d of %d container logs not read: %v", len(refs)-i, len(refs), context.Cause(ctx))
			break
		}
		if c.room() <= 0 {
			c.truncate(fmt.Sprintf("the total limit of %d bytes was reached: %d of %d container logs left out", c.lim.TotalBytes, len(refs)-i, len(refs)))
			break
		}
		limit := min(c.lim.LogBytes, c.room())
		data, err := c.readLog(ctx, r, limit)
		if err != nil {
			c.fail("read %s: %v", r.file(), err)
			if len(data) == 0 {
				continue
			}
		}
		if int64(len(data)) > limit {
			data = data[:limit]
			cut++
		}
		c.used += int64(len(data))
		c.add(r.file(), data)
	}
	if cut > 0 {
		c.truncate(fmt.Sprintf("%d container logs were cut at %d bytes", cut, c.lim.LogBytes))
	}
}

// readLog reads the last TailLines lines of a log, at most limit+1 bytes,
// so that the caller sees whether the log went beyond limit.
func (c *collector) readLog(ctx context.Context, r logRef, limit int64) ([]byte, error) {
	tail, limitBytes := int64(c.lim.TailLines), limit+1
	req := c.cs.CoreV1().Pods(r.namespace).GetLogs(r.pod, &corev1.PodLogOptions{
		Container: r.container, Previous: r.previous, TailLines: &tail, LimitBytes: &limitBytes,
	})
	s, err := req.Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return io.ReadAll(io.LimitReader(s, limitBytes))
}
