package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Config is what the host tells a guest about itself. The host writes it,
// JSON padded with NUL bytes to whole sectors, into a small file that the
// guest sees as a read-only disk (ConfigDisk); the guest reads that disk at
// boot. A disk, not the kernel command line, because exec lines and sysctls
// hold the spaces and commas the command line splits on, and not the lab
// directory, which stays the user's.
type Config struct {
	Version int    `json:"version"`
	Machine string `json:"machine"`
	Lab     string `json:"lab,omitempty"`    // the lab's name, for messages
	Format  string `json:"format,omitempty"` // netkit, netkit-jh, kathara, unknown

	// CopyShared copies the lab's shared/ over / on first boot (Netkit);
	// MountShared binds it at /shared on every boot (Kathará).
	CopyShared  bool `json:"copy_shared,omitempty"`
	MountShared bool `json:"mount_shared,omitempty"`

	// Root is the guest's root disk (the machine's COW file).
	Root string `json:"root"`
	// Interfaces are the guest's interface names (eth0, eth1, …) in the
	// order the kernel creates them; a vector kernel names them vecN and
	// the guest renames them.
	Interfaces []string `json:"interfaces,omitempty"`
	Vector     bool     `json:"vector,omitempty"`
	// MTU sets interfaces' MTU before they come up (a domain that spans
	// hosts over VXLAN needs room for its 50 bytes).
	MTU map[string]int `json:"mtu,omitempty"`

	Sysctl []string `json:"sysctl,omitempty"` // key=value, after the defaults
	Exec   []string `json:"exec,omitempty"`   // shell commands after the startup files
	Env    []string `json:"env,omitempty"`    // KEY=VALUE for startup files and exec

	// StartupTimeout bounds the startup files, in seconds (0: none).
	StartupTimeout int `json:"startup_timeout,omitempty"`
	// Channels are the serial lines (ttySN) the agent serves.
	Channels []int `json:"channels"`
}

// ConfigVersion is the Config layout this package writes and reads.
const ConfigVersion = 1

// Serial lines the agent listens on. High numbers leave the low ones to
// labs (heartbeat cables use ttyS1); several lines let several exec
// sessions run at once.
var DefaultChannels = []int{60, 61, 62, 63}

// MarshalConfig returns the config disk's bytes.
func MarshalConfig(c *Config) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	size := (len(b) + 1 + 4095) / 4096 * 4096
	out := make([]byte, size)
	copy(out, b)
	return out, nil
}

// UnmarshalConfig reads a config disk's bytes.
func UnmarshalConfig(b []byte) (*Config, error) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return nil, errors.New("agent: empty config disk")
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("agent: config disk: %w", err)
	}
	if c.Version != ConfigVersion {
		return nil, fmt.Errorf("agent: config disk version %d, want %d", c.Version, ConfigVersion)
	}
	if c.Machine == "" {
		return nil, errors.New("agent: config disk names no machine")
	}
	return &c, nil
}
