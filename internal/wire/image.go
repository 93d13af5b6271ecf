package wire

// ImageLoad is the answer to POST /v1/clusters/{id}/images: the images
// the archive held, now in the cluster's node.
type ImageLoad struct {
	ClusterID string  `json:"cluster-id"`
	Images    []Image `json:"images"`
	// Bytes is the size of the archive the server received.
	Bytes int64 `json:"bytes"`
}

// Image is one image in a node's container runtime.
type Image struct {
	// Name is the full reference, as containerd records it
	// (docker.io/library/app:dev).
	Name string `json:"name"`
	// Digest is the image's manifest (or index) digest, sha256:....
	Digest string `json:"digest"`
}
