//go:build !unix

package ghaction

// chownLike is a no-op where files have no unix owner.
func chownLike(path, ref string) error { return nil }
