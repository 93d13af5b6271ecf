package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/smek/action/internal/cluster"
)

// This file holds the read-only queries of the operator's view (status page,
// metrics, `provisioner pool status` and `cluster list --all`) and the
// pruning of old events.

// PoolHealth sums up the pool members of one flavor by what they are doing.
type PoolHealth struct {
	Flavor cluster.Flavor
	// Ready members can be claimed at once.
	Ready int
	// Booting members are being created or bootstrapped.
	Booting int
	// Rebuilding members were released and are being wiped.
	Rebuilding int
	// InUse members serve a cluster (running or stopped).
	InUse  int
	Failed int
	// Other counts members in a state this view does not know.
	Other int
}

// add counts n members in state into the field that state belongs to.
// Deleted members are history and count nowhere.
func (h *PoolHealth) add(state string, n int) {
	switch cluster.MemberState(state) {
	case cluster.MemberReady:
		h.Ready += n
	case cluster.MemberCreating, cluster.MemberBootstrapping:
		h.Booting += n
	case cluster.MemberDirty, cluster.MemberRebuilding:
		h.Rebuilding += n
	case cluster.MemberClaimed, cluster.MemberStopped:
		h.InUse += n
	case cluster.MemberFailed:
		h.Failed += n
	case cluster.MemberDeleted:
	default:
		h.Other += n
	}
}

// MemberCounts counts pool members by flavor and state. Deleted members are
// left out.
func (db *DB) MemberCounts(ctx context.Context) (map[cluster.Flavor]map[string]int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT k8s_version, size, privileged, state, COUNT(*)
		FROM servers WHERE state != 'deleted' GROUP BY k8s_version, size, privileged, state`)
	if err != nil {
		return nil, fmt.Errorf("count servers: %w", err)
	}
	defer rows.Close()
	out := map[cluster.Flavor]map[string]int{}
	for rows.Next() {
		var f cluster.Flavor
		var priv, n int
		var state string
		if err := rows.Scan(&f.K8sVersion, &f.Size, &priv, &state, &n); err != nil {
			return nil, fmt.Errorf("count servers: %w", err)
		}
		f.Privileged = priv == 1
		if out[f] == nil {
			out[f] = map[string]int{}
		}
		out[f][state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count servers: %w", err)
	}
	return out, nil
}

// PoolHealth returns the health of every flavor that has pool members,
// ordered by flavor.
func (db *DB) PoolHealth(ctx context.Context) ([]PoolHealth, error) {
	counts, err := db.MemberCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PoolHealth, 0, len(counts))
	for f, states := range counts {
		h := PoolHealth{Flavor: f}
		for state, n := range states {
			h.add(state, n)
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Flavor.String() < out[j].Flavor.String() })
	return out, nil
}

// ClusterCounts counts clusters by status, over all accounts.
func (db *DB) ClusterCounts(ctx context.Context) (map[cluster.Status]int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM clusters GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count clusters: %w", err)
	}
	defer rows.Close()
	out := map[cluster.Status]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("count clusters: %w", err)
		}
		out[cluster.Status(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count clusters: %w", err)
	}
	return out, nil
}

// AllClusters lists the clusters of every account, newest first. Without
// includeEnded it lists only live clusters (pending, running, stopped,
// terminating); with it, terminated and failed ones too.
func (db *DB) AllClusters(ctx context.Context, includeEnded bool) ([]cluster.Cluster, error) {
	var f cluster.Filter
	if !includeEnded {
		f.Statuses = []cluster.Status{cluster.Pending, cluster.Running, cluster.Stopped, cluster.Terminating}
	}
	return db.Clusters(ctx, f)
}

// ClaimSample is the timing of one cluster creation that delivered a
// cluster.
type ClaimSample struct {
	ClusterID cluster.ID
	// At is when the request came in.
	At      time.Time
	Timings cluster.Timings
}

// ClaimSamples returns the timings of the creations since the given time
// that delivered a running cluster (it may have been stopped or terminated
// since), oldest first. Failed and still pending creations are left out.
func (db *DB) ClaimSamples(ctx context.Context, since time.Time) ([]ClaimSample, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, created_at, queued_ms, claimed_ms, ready_ms, warm FROM clusters
		WHERE created_at >= ? AND status IN ('running', 'stopped', 'terminating', 'terminated')
		ORDER BY created_at, id`, ms(since))
	if err != nil {
		return nil, fmt.Errorf("list claim samples: %w", err)
	}
	defer rows.Close()
	var out []ClaimSample
	for rows.Next() {
		var s ClaimSample
		var id string
		var created sql.NullInt64
		var queued, claimed, ready int64
		var warm int
		if err := rows.Scan(&id, &created, &queued, &claimed, &ready, &warm); err != nil {
			return nil, fmt.Errorf("list claim samples: %w", err)
		}
		s.ClusterID, s.At = cluster.ID(id), fromMS(created)
		s.Timings = cluster.Timings{
			Queued:  time.Duration(queued) * time.Millisecond,
			Claimed: time.Duration(claimed) * time.Millisecond,
			Ready:   time.Duration(ready) * time.Millisecond,
			Warm:    warm == 1,
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list claim samples: %w", err)
	}
	return out, nil
}

// PruneEvents deletes the events recorded before the given time and returns
// how many it deleted. The server calls it periodically to keep events for
// the configured retention.
func (db *DB) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	n, err := db.execCount(ctx, `DELETE FROM events WHERE time < ?`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("prune events before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}
