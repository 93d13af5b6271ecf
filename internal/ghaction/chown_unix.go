//go:build unix

package ghaction

import (
	"fmt"
	"os"
	"syscall"
)

// chownLike gives path the owner and group of ref, when they differ.
func chownLike(path, ref string) error {
	ri, err := os.Stat(ref)
	if err != nil {
		return err
	}
	pi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	rs, ok1 := ri.Sys().(*syscall.Stat_t)
	ps, ok2 := pi.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || (rs.Uid == ps.Uid && rs.Gid == ps.Gid) {
		return nil
	}
	if err := os.Lchown(path, int(rs.Uid), int(rs.Gid)); err != nil {
		return fmt.Errorf("hand %s to the owner of %s: %w", path, ref, err)
	}
	return nil
}
