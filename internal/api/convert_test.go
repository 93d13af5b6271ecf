package api

import (
	"strconv"
	"testing"

	"github.com/smek/action/internal/cluster"
)

// /v1 tells a hibernated (and a restoring) cluster from a stopped one; the
// status stored, and what /list shows, stays stopped.
func TestToWireShowsHibernation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		c        cluster.Cluster
		status   string
		gb, step string
	}{
		{"stopped", cluster.Cluster{Status: cluster.Stopped}, "stopped", "", ""},
		{"hibernated", cluster.Cluster{Status: cluster.Stopped, Hibernated: true, SnapshotGB: 2.5}, "hibernated", "2.5", ""},
		{"restoring", cluster.Cluster{Status: cluster.Stopped, Hibernated: true, SnapshotGB: 2.5, Restoring: "creating a server"}, "restoring", "2.5", "creating a server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := toWire(tc.c)
			gb := ""
			if w.SnapshotSizeGB != nil {
				gb = strconv.FormatFloat(*w.SnapshotSizeGB, 'f', -1, 64)
			}
			if w.ClusterStatus != tc.status || gb != tc.gb || w.RestoreStep != tc.step {
				t.Errorf("got status %q, snapshot %q GB, step %q; want %q, %q, %q", w.ClusterStatus, gb, w.RestoreStep, tc.status, tc.gb, tc.step)
			}
		})
	}
}
