package local

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/smek/action/internal/cluster"
)

// BenchmarkProvision: pool start to a ready member, without and with its
// kubelet node, and the memory the member's processes hold once ready
// (the sum of their RSS: the control plane's, and the node's with its
// shims and sandboxes).
func BenchmarkProvision(b *testing.B) {
	for _, nodes := range []bool{false, true} {
		b.Run(fmt.Sprintf("nodes=%t", nodes), func(b *testing.B) {
			bin := kubeBin(b)
			if nodes {
				if err := CheckNodeSupport(bin); err != nil {
					b.Skip(err)
				}
			}
			be, err := New(Config{Dir: b.TempDir(), BinDir: bin, Nodes: nodes})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close(context.Background())
			var total, node, rss []float64
			for i := range b.N {
				m := cluster.Member{ID: fmt.Sprintf("s-bench-%d", i), Flavor: cluster.Flavor{K8sVersion: Version, Size: cluster.SizeMid}}
				start := time.Now()
				data, err := be.Provision(context.Background(), m)
				if err != nil {
					b.Fatal(err)
				}
				total = append(total, float64(time.Since(start).Milliseconds()))
				b.StopTimer()
				mem, _ := be.member(m)
				pids := []int{}
				for _, p := range mem.cp.procs {
					pids = append(pids, p.cmd.Process.Pid)
				}
				if mem.node != nil {
					n, _ := loadNodeNet(be.dir(m))
					pids = append(pids, nodePIDs(n)...)
				}
				rss = append(rss, rssMB(pids))
				node = append(node, float64(be.PhaseTimings(data)["node"].Milliseconds()))
				if err := be.Destroy(context.Background(), m); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(median(total), "ready-p50-ms")
			b.ReportMetric(median(node), "node-phase-p50-ms")
			b.ReportMetric(median(rss), "rss-p50-MB")
		})
	}
}

// BenchmarkPodStart: create a busybox pod to Running on a ready node.
func BenchmarkPodStart(b *testing.B) {
	bin := kubeBin(b)
	if err := CheckNodeSupport(bin); err != nil {
		b.Skip(err)
	}
	be, err := New(Config{Dir: b.TempDir(), BinDir: bin, Nodes: true})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close(context.Background())
	m := cluster.Member{ID: "s-podstart", Flavor: cluster.Flavor{K8sVersion: Version, Size: cluster.SizeMid}}
	ctx := context.Background()
	if _, err := be.Provision(ctx, m); err != nil {
		b.Fatal(err)
	}
	defer be.Destroy(ctx, m)
	mem, _ := be.member(m)
	cs := kubernetes.NewForConfigOrDie(mem.cp.AdminConfig())
	if err := mem.admin.WaitServiceAccount(ctx); err != nil {
		b.Fatal(err)
	}
	var starts []float64
	b.ResetTimer()
	for i := range b.N {
		name := "p" + strconv.Itoa(i)
		start := time.Now()
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"}}},
		}}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		tick := time.NewTicker(20 * time.Millisecond)
		for {
			p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if p.Status.Phase == corev1.PodRunning {
				break
			}
			<-tick.C
		}
		tick.Stop()
		starts = append(starts, float64(time.Since(start).Milliseconds()))
	}
	b.StopTimer()
	b.ReportMetric(median(starts), "running-p50-ms")
	b.ReportMetric(slices.Max(starts), "running-max-ms")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// rssMB sums the resident memory of the processes, in MB.
func rssMB(pids []int) float64 {
	var kb int
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				n, _ := strconv.Atoi(f[1])
				kb += n
			}
		}
	}
	return float64(kb) / 1024
}
