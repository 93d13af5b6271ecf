package diagnostics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Summary is summary.json: the counts and the failing pods.
type Summary struct {
	Nodes         int  `json:"nodes"`
	NodesNotReady int  `json:"nodes-not-ready"`
	Pods          int  `json:"pods"`
	Events        int  `json:"events"`
	WarningEvents int  `json:"warning-events"`
	Errors        int  `json:"errors"`
	Truncated     bool `json:"truncated"`
	// TruncatedBecause names each bound that left something out.
	TruncatedBecause []string     `json:"truncated-because,omitempty"`
	FailingPods      []FailingPod `json:"failing-pods"`
}

// FailingPod is a pod that is not doing what it should, and why.
type FailingPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Phase     string `json:"phase"`
	// Reason is CrashLoopBackOff, ImagePullBackOff, ErrImagePull,
	// OOMKilled, Error, Restarted (running again after a failed run),
	// Unschedulable, NotReady, a container's waiting reason, or the pod's
	// own (Evicted...).
	Reason string `json:"reason"`
	// Container is the container the reason is about, if any.
	Container string `json:"container,omitempty"`
	// ExitCode is the container's last exit code, if it exited.
	ExitCode *int32 `json:"exit-code,omitempty"`
	Restarts int32  `json:"restarts"`
	Message  string `json:"message,omitempty"`
}

// maxSummaryPods bounds the failing pods listed in the summaries.
const maxSummaryPods = 100

// failingPods picks the pods that fail, each with its most telling reason.
func failingPods(pods []corev1.Pod) []FailingPod {
	out := []FailingPod{}
	for _, p := range pods {
		if f, ok := failing(p); ok {
			out = append(out, f)
		}
	}
	return out
}

func failing(p corev1.Pod) (FailingPod, bool) {
	f := FailingPod{Namespace: p.Namespace, Name: p.Name, Phase: string(p.Status.Phase)}
	if p.Status.Phase == corev1.PodSucceeded {
		return f, false
	}
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range statuses {
			if containerFailing(&f, s) {
				return f, true
			}
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			f.Reason, f.Message = c.Reason, c.Message
			if f.Reason == "" {
				f.Reason = "Unschedulable"
			}
			return f, true
		}
	}
	switch p.Status.Phase {
	case corev1.PodFailed:
		f.Reason, f.Message = p.Status.Reason, p.Status.Message
		if f.Reason == "" {
			f.Reason = "Failed"
		}
		return f, true
	case corev1.PodPending:
		f.Reason = "Pending"
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Waiting != nil && s.State.Waiting.Reason != "" {
				f.Reason, f.Container, f.Message = s.State.Waiting.Reason, s.Name, s.State.Waiting.Message
				break
			}
		}
		return f, true
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			f.Reason, f.Message = "NotReady", c.Message
			return f, true
		}
	}
	return f, false
}

// waitingFailures are the waiting reasons that mean a container cannot run.
var waitingFailures = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true,
	"InvalidImageName": true, "CreateContainerConfigError": true,
	"CreateContainerError": true, "RunContainerError": true,
}

// containerFailing fills f and reports whether s is a failing container.
func containerFailing(f *FailingPod, s corev1.ContainerStatus) bool {
	f.Container, f.Restarts = s.Name, s.RestartCount
	last := s.LastTerminationState.Terminated
	if w := s.State.Waiting; w != nil && waitingFailures[w.Reason] {
		f.Reason, f.Message = w.Reason, w.Message
		if last != nil {
			code := last.ExitCode
			f.ExitCode = &code
			if last.Reason == "OOMKilled" {
				f.Message = strings.TrimSpace("last run OOMKilled; " + f.Message)
			}
		}
		return true
	}
	if t := s.State.Terminated; t != nil && (t.ExitCode != 0 || t.Reason == "OOMKilled") {
		code := t.ExitCode
		f.Reason, f.ExitCode, f.Message = t.Reason, &code, t.Message
		if f.Reason == "" {
			f.Reason = "Error"
		}
		return true
	}
	if last != nil && last.Reason == "OOMKilled" {
		code := last.ExitCode
		f.Reason, f.ExitCode, f.Message = "OOMKilled", &code, last.Message
		return true
	}
	// Between two back-offs a crash-looping container runs for a moment;
	// the run before tells what it does.
	if last != nil && last.ExitCode != 0 && s.RestartCount > 0 {
		code := last.ExitCode
		f.Reason, f.ExitCode = "Restarted", &code
		f.Message = strings.TrimSpace(fmt.Sprintf("restarted %d times, the last run ended %s %s", s.RestartCount, last.Reason, last.Message))
		return true
	}
	f.Container, f.Restarts = "", 0
	return false
}

// addSummary writes summary.json and summary.md.
func (c *collector) addSummary() {
	s := c.summary
	if len(s.FailingPods) > maxSummaryPods {
		s.TruncatedBecause = append(s.TruncatedBecause, fmt.Sprintf("only the first %d of %d failing pods are listed", maxSummaryPods, len(s.FailingPods)))
		s.Truncated = true
		s.FailingPods = s.FailingPods[:maxSummaryPods]
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		c.fail("encode summary: %v", err)
	} else {
		c.add("summary.json", append(js, '\n'))
	}
	c.add("summary.md", Markdown(s))
}

// maxMessage bounds a message in summary.md.
const maxMessage = 200

// Markdown renders a summary for a job summary: the counts and a table of
// the failing pods.
func Markdown(s Summary) []byte {
	var b bytes.Buffer
	b.WriteString("### Cluster diagnostics\n\n")
	fmt.Fprintf(&b, "%d node(s), %d not ready; %d pod(s), %d failing; %d event(s), %d warning(s).\n",
		s.Nodes, s.NodesNotReady, s.Pods, len(s.FailingPods), s.Events, s.WarningEvents)
	if len(s.FailingPods) > 0 {
		b.WriteString("\n| Pod | Container | Reason | Exit code | Restarts | Message |\n|---|---|---|---|---|---|\n")
		for _, f := range s.FailingPods {
			code := ""
			if f.ExitCode != nil {
				code = fmt.Sprint(*f.ExitCode)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s |\n", cell(f.Namespace+"/"+f.Name), cell(f.Container),
				cell(f.Reason), code, f.Restarts, cell(f.Message))
		}
	}
	if s.Truncated {
		b.WriteString("\nTruncated: " + cell(strings.Join(s.TruncatedBecause, "; ")) + ".\n")
	}
	if s.Errors > 0 {
		fmt.Fprintf(&b, "\n%d part(s) could not be read; see errors.txt.\n", s.Errors)
	}
	return b.Bytes()
}

// cell makes text from the cluster safe in a Markdown table cell: one
// line, no table or HTML syntax, bounded.
func cell(s string) string {
	s = oneLine(s)
	if r := []rune(s); len(r) > maxMessage {
		s = string(r[:maxMessage]) + "…"
	}
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "`", "'").Replace(s)
}
