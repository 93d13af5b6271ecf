package cluster

// Image is one image in a node's container runtime.
type Image struct {
	// Name is the full reference, as containerd records it
	// (docker.io/library/app:dev).
	Name string
	// Digest is the image's manifest or index digest (sha256:...).
	Digest string
}
