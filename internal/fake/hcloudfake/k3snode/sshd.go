package k3snode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/crypto/ssh"
)

// sshd is the node's SSH server: public key authentication against root's
// authorized_keys on the disk, "exec" sessions only.
type sshd struct {
	node *Node
	l    net.Listener
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startSSHD serves SSH on public port 22, each connection with the host
// key hostKey returns for it.
func startSSHD(n *Node, hostKey func() ssh.Signer) (*sshd, error) {
	l, err := n.listen(22)
	if err != nil {
		return nil, err
	}
	s := &sshd{node: n, l: l, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			cfg := &ssh.ServerConfig{PublicKeyCallback: s.authorize}
			cfg.AddHostKey(hostKey())
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, cfg)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	return s, nil
}

// close stops listening and cuts every connection, like a power cut.
// n.mu is held.
func (s *sshd) close() error {
	err := s.node.unlisten(22)
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *sshd) authorize(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if meta.User() != "root" {
		return nil, errors.New("only root may log in")
	}
	b, err := s.node.readFile("/root/.ssh/authorized_keys")
	if err != nil {
		return nil, errors.New("no authorized keys")
	}
	for len(b) > 0 {
		pub, _, _, rest, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			break
		}
		if bytes.Equal(pub.Marshal(), key.Marshal()) {
			return &ssh.Permissions{}, nil
		}
		b = rest
	}
	return nil, errors.New("key not authorized")
}

func (s *sshd) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	// As OpenSSH's sshd: "client address, client port, server port".
	env := map[string]string{}
	if peer, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		env["SSH_CLIENT"] = fmt.Sprintf("%s %d 22", peer.Addr().Unmap(), peer.Port())
	}
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.session(ch, creqs, env)
	}
}

func (s *sshd) session(ch ssh.Channel, reqs <-chan *ssh.Request, env map[string]string) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			code := s.node.runEnv(p.Command, env, ch, ch, ch.Stderr())
			_ = ch.CloseWrite()
			status := make([]byte, 4)
			binary.BigEndian.PutUint32(status, uint32(code))
			_, _ = ch.SendRequest("exit-status", false, status)
			return
		case "env":
			_ = req.Reply(true, nil)
		default:
			// No shell, no pty: the bootstrap only runs commands.
			_ = req.Reply(false, nil)
		}
	}
}

var _ io.Reader = (ssh.Channel)(nil)
