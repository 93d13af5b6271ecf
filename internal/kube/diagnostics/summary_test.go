package diagnostics

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: reason + " message"}}
}

func terminated(reason string, code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}
}

func TestFailing(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	ready := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	for _, tc := range []struct {
		name      string
		phase     corev1.PodPhase
		init      []corev1.ContainerStatus
		status    []corev1.ContainerStatus
		conds     []corev1.PodCondition
		podReason string
		want      string // "" when not failing
		code      int32
	}{
		{name: "crash loop", phase: corev1.PodRunning, want: "CrashLoopBackOff", code: 3,
			status: []corev1.ContainerStatus{{Name: "app", State: waiting("CrashLoopBackOff"), LastTerminationState: terminated("Error", 3), RestartCount: 2}}},
		{name: "image pull back-off", phase: corev1.PodPending, want: "ImagePullBackOff", code: -1,
			status: []corev1.ContainerStatus{{Name: "app", State: waiting("ImagePullBackOff")}}},
		{name: "image pull error", phase: corev1.PodPending, want: "ErrImagePull", code: -1,
			status: []corev1.ContainerStatus{{Name: "app", State: waiting("ErrImagePull")}}},
		{name: "OOM killed, running again", phase: corev1.PodRunning, want: "OOMKilled", code: 137, conds: ready,
			status: []corev1.ContainerStatus{{Name: "app", State: running, LastTerminationState: terminated("OOMKilled", 137), RestartCount: 1}}},
		{name: "running again between back-offs", phase: corev1.PodRunning, want: "Restarted", code: 3, conds: ready,
			status: []corev1.ContainerStatus{{Name: "app", State: running, LastTerminationState: terminated("Error", 3), RestartCount: 4}}},
		{name: "failed job", phase: corev1.PodFailed, want: "Error", code: 1,
			status: []corev1.ContainerStatus{{Name: "app", State: terminated("Error", 1)}}},
		{name: "failed init container", phase: corev1.PodPending, want: "Error", code: 2,
			init: []corev1.ContainerStatus{{Name: "setup", State: terminated("", 2)}}},
		{name: "unschedulable", phase: corev1.PodPending, want: "Unschedulable", code: -1,
			conds: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available"}}},
		{name: "evicted", phase: corev1.PodFailed, podReason: "Evicted", want: "Evicted", code: -1},
		{name: "not ready", phase: corev1.PodRunning, want: "NotReady", code: -1,
			conds:  []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Message: "containers with unready status: [app]"}},
			status: []corev1.ContainerStatus{{Name: "app", State: running}}},
		{name: "creating", phase: corev1.PodPending, want: "ContainerCreating", code: -1,
			status: []corev1.ContainerStatus{{Name: "app", State: waiting("ContainerCreating")}}},
		{name: "running and ready", phase: corev1.PodRunning, conds: ready,
			status: []corev1.ContainerStatus{{Name: "app", State: running}}},
		{name: "succeeded", phase: corev1.PodSucceeded,
			status: []corev1.ContainerStatus{{Name: "app", State: terminated("Completed", 0)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Status: corev1.PodStatus{
				Phase: tc.phase, Reason: tc.podReason, Conditions: tc.conds, InitContainerStatuses: tc.init, ContainerStatuses: tc.status,
			}}
			f, ok := failing(p)
			if tc.want == "" {
				if ok {
					t.Errorf("failing: %+v", f)
				}
				return
			}
			if !ok || f.Reason != tc.want {
				t.Fatalf("got %+v (%t), want reason %s", f, ok, tc.want)
			}
			switch {
			case tc.code < 0 && f.ExitCode != nil:
				t.Errorf("exit code %d, want none", *f.ExitCode)
			case tc.code >= 0 && (f.ExitCode == nil || *f.ExitCode != tc.code):
				t.Errorf("exit code %v, want %d", f.ExitCode, tc.code)
			}
		})
	}
}

func TestSortEvents(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 12, 3, 14, 0, s, 0, time.UTC) }
	events := []corev1.Event{
		{ObjectMeta: metav1.ObjectMeta{Name: "event-time"}, EventTime: metav1.NewMicroTime(at(30))},
		{ObjectMeta: metav1.ObjectMeta{Name: "last"}, FirstTimestamp: metav1.NewTime(at(1)), LastTimestamp: metav1.NewTime(at(20))},
		{ObjectMeta: metav1.ObjectMeta{Name: "first-only"}, FirstTimestamp: metav1.NewTime(at(10))},
		{ObjectMeta: metav1.ObjectMeta{Name: "created", CreationTimestamp: metav1.NewTime(at(5))}},
	}
	sortEvents(events)
	var got []string
	for _, e := range events {
		got = append(got, e.Name)
	}
	if want := "created first-only last event-time"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

func TestMarkdownEscapesClusterText(t *testing.T) {
	code := int32(1)
	md := string(Markdown(Summary{Pods: 1, FailingPods: []FailingPod{{
		Namespace: "ns", Name: "p", Reason: "Error", ExitCode: &code,
		Message: "a | b\n<script>x</script> `c` " + strings.Repeat("y", 300),
	}}}))
	for _, bad := range []string{"a | b", "<script>", "`c`", "\nx", strings.Repeat("y", 201)} {
		if strings.Contains(md, bad) {
			t.Errorf("summary.md holds %q:\n%s", bad, md)
		}
	}
	if !strings.Contains(md, `a \| b &lt;script&gt;x&lt;/script&gt; 'c'`) || !strings.Contains(md, "| ns/p |  | Error | 1 | 0 |") {
		t.Errorf("summary.md:\n%s", md)
	}
}

func TestLogsOf(t *testing.T) {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Status: corev1.PodStatus{
		InitContainerStatuses: []corev1.ContainerStatus{
			{Name: "setup", State: waiting("CrashLoopBackOff"), LastTerminationState: terminated("Error", 1), RestartCount: 3},
		},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "app", State: waiting("PodInitializing")},
			{Name: "sidecar", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		},
	}}
	var got []string
	for _, r := range logsOf(p) {
		got = append(got, r.file())
	}
	want := "logs/ns/p/setup.log logs/ns/p/setup.previous.log logs/ns/p/sidecar.log"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
