package hetzner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// PrunedImage is one golden snapshot as PruneImages saw it.
type PrunedImage struct {
	ID         int64
	K8sVersion string
	K3sVersion string
	Created    time.Time
	// Delete says the snapshot goes (went, unless a dry run); Reason says
	// why it stays otherwise.
	Delete bool
	Reason string
	// Err is why deleting it failed.
	Err error
}

// MemberImage returns the snapshot a member's server was built from, as
// its data records it (0 when unknown).
func MemberImage(memberData []byte) int64 {
	d, err := parseData(memberData)
	if err != nil {
		return 0
	}
	return d.Image
}

// PruneImages deletes the installation's golden snapshots that are neither
// among the keep newest of their Kubernetes version nor the image of a
// member's server (inUse: image id → member ids, from MemberImage over
// the live members). Snapshots still being made (a build under way) are
// left alone. With dryRun nothing is deleted. The list says what happened
// to each snapshot, newest first per version.
func (b *Backend) PruneImages(ctx context.Context, keep int, inUse map[int64][]string, dryRun bool) ([]PrunedImage, error) {
	if keep < 1 {
		return nil, errors.New("keep at least the newest snapshot of each version (keep ≥ 1)")
	}
	imgs, err := b.listImages(ctx, LabelInstall+"="+b.cfg.Installation+","+LabelRole+"=golden")
	if err != nil {
		return nil, fmt.Errorf("list golden snapshots: %w", err)
	}
	var out []PrunedImage
	for _, img := range imgs {
		p := PrunedImage{ID: img.ID, K8sVersion: img.Labels[LabelK8sVersion], K3sVersion: img.Labels[LabelK3sVersion], Created: img.Created}
		if img.Status != hcloud.ImageStatusAvailable {
			p.Reason = "still " + string(img.Status)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b PrunedImage) int {
		if c := compareVersions(b.K8sVersion, a.K8sVersion); c != 0 {
			return c
		}
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	seen := map[string]int{}
	for i := range out {
		p := &out[i]
		if p.Reason != "" {
			continue
		}
		seen[p.K8sVersion]++
		switch {
		case seen[p.K8sVersion] <= keep:
			p.Reason = fmt.Sprintf("newest %d of Kubernetes %s", keep, p.K8sVersion)
		case len(inUse[p.ID]) > 0:
			p.Reason = "image of member " + strings.Join(inUse[p.ID], ", ")
		default:
			p.Delete = true
		}
	}
	if dryRun {
		return out, nil
	}
	var errs []error
	for i := range out {
		p := &out[i]
		if !p.Delete {
			continue
		}
		err := b.budget.do(ctx, func() (*hcloud.Response, error) {
			return b.cfg.Client.Image.Delete(ctx, &hcloud.Image{ID: p.ID})
		})
		if err != nil && !hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
			p.Err = err
			errs = append(errs, fmt.Errorf("delete snapshot %d: %w", p.ID, err))
		}
	}
	b.mu.Lock()
	b.imgAt = time.Time{} // the next lookup lists the snapshots again
	b.mu.Unlock()
	return out, errors.Join(errs...)
}
