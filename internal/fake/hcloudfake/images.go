package hcloudfake

import (
	"cmp"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// image is a system image or a snapshot. The fake's mutex guards it.
type image struct {
	id          int64
	typ         string // system, snapshot, backup
	status      string // creating, available
	name        string // system images only
	description string
	created     time.Time
	createdFrom *schema.ImageCreatedFrom
	osFlavor    string
	osVersion   string
	diskSize    float32
	imageSize   *float32
	labels      map[string]string
	// dir holds the disk contents of a snapshot of a simulated machine.
	dir string
	// inconsistent: taken of a server that was not off (see Disk).
	inconsistent bool
}

func (img *image) schema() schema.Image {
	s := schema.Image{
		ID: img.id, Status: img.status, Type: img.typ, Description: img.description,
		ImageSize: img.imageSize, DiskSize: img.diskSize, CreatedFrom: img.createdFrom,
		OSFlavor: img.osFlavor, Architecture: "x86", Labels: cloneLabels(img.labels),
	}
	created := img.created
	s.Created = &created
	if img.name != "" {
		name := img.name
		s.Name = &name
	}
	if img.osVersion != "" {
		v := img.osVersion
		s.OSVersion = &v
	}
	return s
}

// findImage resolves an image given by id or (system images) by name.
func (f *Fake) findImage(ref schema.IDOrName) (*image, *apiError) {
	if ref.ID == 0 && ref.Name == "" {
		return nil, invalidField("image", "is required")
	}
	for _, img := range f.images {
		if (ref.ID != 0 && img.id == ref.ID) || (ref.Name != "" && img.name == ref.Name) {
			if img.status != "available" {
				return nil, invalidField("image", "image is not available")
			}
			return img, nil
		}
	}
	return nil, invalidField("image", "image not found")
}

func (f *Fake) listImages(r *http.Request, _ time.Time) (int, any, *apiError) {
	q := r.URL.Query()
	for _, t := range q["type"] {
		if !slices.Contains([]string{"system", "app", "snapshot", "backup"}, t) {
			return 0, nil, invalidField("type", "must be one of system, app, snapshot, backup")
		}
	}
	var items []*image
	for _, img := range f.images {
		if t := q["type"]; len(t) > 0 && !slices.Contains(t, img.typ) {
			continue
		}
		if st := q["status"]; len(st) > 0 && !slices.Contains(st, img.status) {
			continue
		}
		if n := q.Get("name"); n != "" && img.name != n {
			continue
		}
		if a := q.Get("architecture"); a != "" && a != "x86" {
			continue
		}
		items = append(items, img)
	}
	items, apiErr := filterLabels(r, items, func(i *image) map[string]string { return i.labels })
	if apiErr != nil {
		return 0, nil, apiErr
	}
	if apiErr := sortBy(r, items, map[string]func(a, b *image) int{
		"id":      func(a, b *image) int { return cmp.Compare(a.id, b.id) },
		"name":    func(a, b *image) int { return cmp.Compare(a.name, b.name) },
		"created": func(a, b *image) int { return a.created.Compare(b.created) },
	}); apiErr != nil {
		return 0, nil, apiErr
	}
	items, meta, apiErr := page(r, items)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	out := []schema.Image{}
	for _, img := range items {
		out = append(out, img.schema())
	}
	return http.StatusOK, struct {
		Images []schema.Image `json:"images"`
		Meta   schema.Meta    `json:"meta"`
	}{out, meta}, nil
}

func (f *Fake) lookupImage(r *http.Request) (*image, *apiError) {
	id, err := pathID(r, "image")
	if err != nil {
		return nil, err
	}
	img, ok := f.images[id]
	if !ok {
		return nil, notFound("image", id)
	}
	return img, nil
}

func (f *Fake) getImage(r *http.Request, _ time.Time) (int, any, *apiError) {
	img, err := f.lookupImage(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, schema.ImageGetResponse{Image: img.schema()}, nil
}

func (f *Fake) updateImage(r *http.Request, _ time.Time) (int, any, *apiError) {
	img, apiErr := f.lookupImage(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	var req schema.ImageUpdateRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if img.typ == "system" {
		return 0, nil, errf(CodeForbidden, "system images cannot be changed")
	}
	if req.Description != nil {
		img.description = *req.Description
	}
	if req.Type != nil {
		if *req.Type != "snapshot" {
			return 0, nil, invalidField("type", "can only be snapshot")
		}
		img.typ = *req.Type
	}
	if req.Labels != nil {
		if err := validLabels(*req.Labels); err != nil {
			return 0, nil, err
		}
		img.labels = cloneLabels(*req.Labels)
	}
	return http.StatusOK, schema.ImageUpdateResponse{Image: img.schema()}, nil
}

func (f *Fake) deleteImage(r *http.Request, _ time.Time) (int, any, *apiError) {
	img, apiErr := f.lookupImage(r)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	if img.typ == "system" {
		return 0, nil, errf(CodeForbidden, "system images cannot be deleted")
	}
	delete(f.images, img.id)
	if img.dir != "" {
		dir := img.dir
		f.effects = append(f.effects, func() { _ = os.RemoveAll(dir) })
	}
	return http.StatusNoContent, nil, nil
}
