package diagnostics

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The text files are for people: one block per object, one fact a line.

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func formatNodes(nodes []corev1.Node) []byte {
	var b bytes.Buffer
	for _, n := range nodes {
		fmt.Fprintf(&b, "node %s\n", n.Name)
		fmt.Fprintf(&b, "  kubelet: %s\n", n.Status.NodeInfo.KubeletVersion)
		for _, c := range n.Status.Conditions {
			formatCondition(&b, string(c.Type), string(c.Status), c.Reason, c.Message)
		}
		fmt.Fprintf(&b, "  capacity: %s\n", formatResources(n.Status.Capacity))
		fmt.Fprintf(&b, "  allocatable: %s\n", formatResources(n.Status.Allocatable))
		for _, t := range n.Spec.Taints {
			fmt.Fprintf(&b, "  taint %s=%s:%s\n", t.Key, t.Value, t.Effect)
		}
		if n.Spec.Unschedulable {
			b.WriteString("  unschedulable (cordoned)\n")
		}
	}
	return b.Bytes()
}

// formatCondition writes one condition of a node or a pod.
func formatCondition(b *bytes.Buffer, typ, status, reason, message string) {
	fmt.Fprintf(b, "  condition %s=%s", typ, status)
	if reason != "" {
		fmt.Fprintf(b, " reason=%s", reason)
	}
	if message != "" {
		fmt.Fprintf(b, " message=%q", message)
	}
	b.WriteByte('\n')
}

func formatResources(l corev1.ResourceList) string {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, string(n))
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		q := l[corev1.ResourceName(n)]
		parts = append(parts, n+"="+q.String())
	}
	return strings.Join(parts, " ")
}

// eventTime is when an event last happened: eventTime, else lastTimestamp,
// else firstTimestamp, else its creation.
func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// sortEvents orders events by time, oldest first; ties by namespace and
// name, so the order is stable.
func sortEvents(events []corev1.Event) {
	sort.SliceStable(events, func(i, j int) bool {
		ti, tj := eventTime(events[i]), eventTime(events[j])
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		if events[i].Namespace != events[j].Namespace {
			return events[i].Namespace < events[j].Namespace
		}
		return events[i].Name < events[j].Name
	})
}

func formatEvents(events []corev1.Event) []byte {
	var b bytes.Buffer
	for _, e := range events {
		count := e.Count
		if e.Series != nil {
			count = e.Series.Count
		}
		fmt.Fprintf(&b, "%s %s %s/%s %s %s x%d: %s\n",
			eventTime(e).UTC().Format(time.RFC3339), e.Namespace,
			strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name,
			e.Type, e.Reason, max(count, 1), oneLine(e.Message))
	}
	return b.Bytes()
}

func formatPods(pods []corev1.Pod) []byte {
	var b bytes.Buffer
	for _, p := range pods {
		fmt.Fprintf(&b, "pod %s/%s\n", p.Namespace, p.Name)
		fmt.Fprintf(&b, "  phase: %s", p.Status.Phase)
		if p.Status.Reason != "" {
			fmt.Fprintf(&b, " reason=%s", p.Status.Reason)
		}
		if p.Status.Message != "" {
			fmt.Fprintf(&b, " message=%q", p.Status.Message)
		}
		b.WriteByte('\n')
		fmt.Fprintf(&b, "  node: %s\n", p.Spec.NodeName)
		for _, c := range p.Status.Conditions {
			formatCondition(&b, string(c.Type), string(c.Status), c.Reason, c.Message)
		}
		for _, s := range p.Status.InitContainerStatuses {
			formatContainer(&b, "init container", s)
		}
		for _, s := range p.Status.ContainerStatuses {
			formatContainer(&b, "container", s)
		}
	}
	return b.Bytes()
}

func formatContainer(b *bytes.Buffer, kind string, s corev1.ContainerStatus) {
	fmt.Fprintf(b, "  %s %s: image=%s ready=%t restarts=%d\n", kind, s.Name, s.Image, s.Ready, s.RestartCount)
	fmt.Fprintf(b, "    state: %s\n", formatState(s.State))
	if s.LastTerminationState != (corev1.ContainerState{}) {
		fmt.Fprintf(b, "    last state: %s\n", formatState(s.LastTerminationState))
	}
}

func formatState(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return strings.TrimSpace(fmt.Sprintf("waiting %s %s", s.Waiting.Reason, quoted(s.Waiting.Message)))
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().Format(time.RFC3339)
	case s.Terminated != nil:
		t := s.Terminated
		return strings.TrimSpace(fmt.Sprintf("terminated %s exit-code=%d signal=%d finished=%s %s",
			t.Reason, t.ExitCode, t.Signal, t.FinishedAt.UTC().Format(time.RFC3339), quoted(t.Message)))
	}
	return "unknown"
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("message=%q", s)
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
