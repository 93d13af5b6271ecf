package hetzner

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// data is the backend's record of a member, stored by the pool as JSON.
// The admin kubeconfig is sealed with AES-GCM.
type data struct {
	ServerID int64  `json:"server-id"`
	Name     string `json:"name"`
	IP       string `json:"ip"`
	// APIServer is the address tenants use (https://ip:6443 on a real node).
	APIServer string `json:"api-server,omitempty"`
	// CA is the cluster CA (PEM, public).
	CA []byte `json:"ca,omitempty"`
	// Admin is the sealed admin kubeconfig of the cluster.
	Admin []byte `json:"admin,omitempty"`
	// HostKey is the SSH host key seen at the first connection after the
	// last (re)build, in authorized_keys format.
	HostKey string `json:"host-key,omitempty"`
	// Image is the snapshot the server was built from.
	Image int64 `json:"image,omitempty"`
	// Snapshot is the id of the hibernation snapshot of a hibernated
	// member (its server is deleted then: ServerID is 0); SnapshotGB its
	// size.
	Snapshot   int64   `json:"snapshot,omitempty"`
	SnapshotGB float64 `json:"snapshot-gb,omitempty"`
	// Timings of the last provision or rebuild, in milliseconds per phase.
	Timings map[string]int64 `json:"timings-ms,omitempty"`
}

func (d *data) marshal() []byte {
	b, _ := json.Marshal(d)
	return b
}

func parseData(b []byte) (data, error) {
	var d data
	if len(b) == 0 {
		return d, nil
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("parse member data: %w", err)
	}
	return d, nil
}

// Timings returns the per-phase durations recorded in a member's data
// (create, boot, bootstrap, ready; rebuild after a release).
func Timings(b []byte) map[string]time.Duration {
	d, err := parseData(b)
	if err != nil {
		return nil
	}
	out := map[string]time.Duration{}
	for k, v := range d.Timings {
		out[k] = time.Duration(v) * time.Millisecond
	}
	return out
}

// sealer encrypts admin credentials at rest.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("credential key: got %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// seal returns nonce || ciphertext; aad binds it to its member.
func (s *sealer) seal(plain []byte, aad string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(aad))
}

func (s *sealer) open(sealed []byte, aad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed credential too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("open sealed credential: %w", err)
	}
	return plain, nil
}

// PhaseTimings implements pool.PhaseTimer.
func (b *Backend) PhaseTimings(data []byte) map[string]time.Duration { return Timings(data) }
