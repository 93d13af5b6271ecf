// Package diagnostics collects what a person needs to see why a job failed
// on a cluster — nodes, events, every pod's status and the last lines of
// each container's logs — into a bounded tar.gz bundle with a short summary
// of the failing pods.
//
// It reads with the credential it is given and nothing else, and never
// reads Secrets, ConfigMaps or pod specs: the bundle holds status, image
// names, events and logs only.
package diagnostics

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Defaults of Limits.
const (
	DefaultTailLines  = 200
	DefaultLogBytes   = 1 << 20
	DefaultTotalBytes = 32 << 20
	DefaultMaxPods    = 1000
	DefaultMaxEvents  = 5000
	// MaxTailLines is the most lines a caller may ask for per log.
	MaxTailLines = 10000
)

// maxErrors bounds the lines of errors.txt.
const maxErrors = 200

// Limits bound a bundle. A zero field takes its default. The overall time
// is the context's deadline, set by the caller.
type Limits struct {
	// TailLines is how many of the last lines of each log are kept.
	TailLines int
	// LogBytes caps each container log (current and previous apart).
	LogBytes int64
	// TotalBytes caps the uncompressed size of nodes.txt, events.txt,
	// pods.txt and the logs together; once reached, no more logs are
	// added. The summaries and errors.txt come on top (they are small).
	TotalBytes int64
	// MaxPods and MaxEvents cap how many pods and events are read.
	MaxPods, MaxEvents int
}

func (l Limits) withDefaults() Limits {
	if l.TailLines <= 0 {
		l.TailLines = DefaultTailLines
	}
	if l.LogBytes <= 0 {
		l.LogBytes = DefaultLogBytes
	}
	if l.TotalBytes <= 0 {
		l.TotalBytes = DefaultTotalBytes
	}
	if l.MaxPods <= 0 {
		l.MaxPods = DefaultMaxPods
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	return l
}

// Collect writes the diagnostics bundle of the cluster cfg reaches to w as
// a tar.gz stream: nodes.txt, events.txt, pods.txt, logs/<namespace>/<pod>/
// <container>[.previous].log, summary.json, summary.md and, when something
// could not be read or a bound was hit, errors.txt. What fails to be read
// is recorded in the bundle, not returned: the stream may already be on its
// way. Collect returns an error only when w fails or cfg is unusable.
func Collect(ctx context.Context, cfg *rest.Config, w io.Writer, lim Limits) error {
	// What a cluster answers is the tenant's to shape (on the hetzner
	// backend even its API server), so no answer may be larger than a
	// bound: lists are read in pages, and every body is capped.
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(capBodies(maxResponseBytes))
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("diagnostics client: %w", err)
	}
	c := &collector{cs: cs, lim: lim.withDefaults(), gz: gzip.NewWriter(w)}
	c.tw = tar.NewWriter(c.gz)
	c.now = time.Now()
	c.run(ctx)
	if c.werr != nil {
		return c.werr
	}
	if err := c.tw.Close(); err != nil {
		return fmt.Errorf("diagnostics bundle: %w", err)
	}
	if err := c.gz.Close(); err != nil {
		return fmt.Errorf("diagnostics bundle: %w", err)
	}
	return nil
}

// collector is one run of Collect.
type collector struct {
	cs  kubernetes.Interface
	lim Limits
	gz  *gzip.Writer
	tw  *tar.Writer
	now time.Time
	// used counts the bytes that count against lim.TotalBytes.
	used int64
	// werr is the first error writing the bundle; nothing is written after it.
	werr    error
	errs    []string
	summary Summary
}

func (c *collector) run(ctx context.Context) {
	nodes, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		c.fail("list nodes: %v", err)
	} else {
		c.summary.Nodes = len(nodes.Items)
		for _, n := range nodes.Items {
			if !nodeReady(n) {
				c.summary.NodesNotReady++
			}
		}
		c.addCounted("nodes.txt", formatNodes(nodes.Items))
	}

	events, more, err := listPages(ctx, c.lim.MaxEvents, func(o metav1.ListOptions) ([]corev1.Event, string, error) {
		l, err := c.cs.CoreV1().Events(metav1.NamespaceAll).List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		return l.Items, l.Continue, nil
	})
	if err != nil {
		c.fail("list events: %v", err)
	}
	if more {
		c.truncate(fmt.Sprintf("only the first %d events were read", c.lim.MaxEvents))
	}
	if len(events) > 0 || err == nil {
		sortEvents(events)
		c.summary.Events = len(events)
		for _, e := range events {
			if e.Type == corev1.EventTypeWarning {
				c.summary.WarningEvents++
			}
		}
		c.addCounted("events.txt", formatEvents(events))
	}

	pods, more, err := listPages(ctx, c.lim.MaxPods, func(o metav1.ListOptions) ([]corev1.Pod, string, error) {
		l, err := c.cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
		if err != nil {
			return nil, "", err
		}
		return l.Items, l.Continue, nil
	})
	if err != nil {
		c.fail("list pods: %v", err)
	}
	if more {
		c.truncate(fmt.Sprintf("only the first %d pods were read", c.lim.MaxPods))
	}
	if len(pods) > 0 || err == nil {
		c.summary.Pods = len(pods)
		c.summary.FailingPods = failingPods(pods)
		c.addCounted("pods.txt", formatPods(pods))
		c.addLogs(ctx, pods)
	}

	if ctx.Err() != nil {
		c.fail("collection stopped: %v", context.Cause(ctx))
	}
	c.summary.Errors = len(c.errs)
	c.addSummary()
	if len(c.errs) > 0 {
		var b bytes.Buffer
		for _, e := range c.errs {
			b.WriteString(e)
			b.WriteByte('\n')
		}
		c.add("errors.txt", b.Bytes())
	}
}

// pageSize is how many objects one list request asks for.
const pageSize = 250

// listPages reads up to max objects in pages and says whether there were
// more. On an error it returns what the pages before it held.
func listPages[T any](ctx context.Context, max int, page func(metav1.ListOptions) ([]T, string, error)) ([]T, bool, error) {
	var all []T
	o := metav1.ListOptions{}
	for {
		o.Limit = int64(min(pageSize, max-len(all)))
		items, next, err := page(o)
		if err != nil {
			return all, false, err
		}
		all = append(all, items[:min(len(items), max-len(all))]...)
		switch {
		case next == "":
			return all, false, nil
		case len(all) >= max:
			return all, true, nil
		case ctx.Err() != nil:
			return all, false, ctx.Err()
		}
		o.Continue = next
	}
}

// fail records a partial failure for errors.txt.
func (c *collector) fail(format string, args ...any) {
	switch {
	case len(c.errs) < maxErrors:
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	case len(c.errs) == maxErrors:
		c.errs = append(c.errs, "(more errors left out)")
	}
}

// truncate records that a bound left something out.
func (c *collector) truncate(why string) {
	c.summary.Truncated = true
	c.summary.TruncatedBecause = append(c.summary.TruncatedBecause, why)
}

// room is how many more counted bytes the bundle may take.
func (c *collector) room() int64 { return c.lim.TotalBytes - c.used }

// addCounted adds a file that counts against TotalBytes, cut at what is
// left of it.
func (c *collector) addCounted(name string, data []byte) {
	if int64(len(data)) > c.room() {
		data = data[:max(c.room(), 0)]
		c.truncate(fmt.Sprintf("%s was cut at the total limit of %d bytes", name, c.lim.TotalBytes))
	}
	c.used += int64(len(data))
	c.add(name, data)
}

// add writes one regular file into the bundle.
func (c *collector) add(name string, data []byte) {
	if c.werr != nil {
		return
	}
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: c.now, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := c.tw.WriteHeader(hdr); err != nil {
		c.werr = fmt.Errorf("diagnostics bundle: %w", err)
		return
	}
	if _, err := c.tw.Write(data); err != nil {
		c.werr = fmt.Errorf("diagnostics bundle: %w", err)
		return
	}
	// Flush each file, so that a client sees the bundle grow and what is
	// sent survives a later failure.
	if err := c.gz.Flush(); err != nil {
		c.werr = fmt.Errorf("diagnostics bundle: %w", err)
	}
}

// CollectKubeconfig is Collect with a kubeconfig SMEK minted. It refuses
// exec and auth-provider plugins: a kubeconfig here is data, never a
// command to run.
func CollectKubeconfig(ctx context.Context, kubeconfig []byte, w io.Writer, lim Limits) error {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return fmt.Errorf("diagnostics kubeconfig: %w", err)
	}
	if cfg.ExecProvider != nil || cfg.AuthProvider != nil {
		return errors.New("diagnostics kubeconfig: exec and auth-provider plugins are not allowed")
	}
	return Collect(ctx, cfg, w, lim)
}
