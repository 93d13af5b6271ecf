package cluster

// Image is one image in a node's container runtime.
type Image struct {
	// Name is the full reference, as containerd records it
	// (docker.io/library/app:dev).
	Name string
	// Digest is the image's manifest or index digest (sha256:...).
	Digest string
}

// ImageArchive is a tar archive of images, checked and spooled to disk,
// to import into a cluster's node.
type ImageArchive struct {
	// Path is the uncompressed tar.
	Path string
	// Names are the full references the archive names, sorted.
	Names []string
}
