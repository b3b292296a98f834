package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"regexp"
	"strconv"

	"github.com/vakt/vakt/outbound/dc09"
)

// ARC is the alarm receiving centre an "arc" tier forwards to, over SIA DC-09
// (docs/arc.md). Only the account, the event code and the zone go out (G7).
type ARC struct {
	Enabled  bool   `yaml:"enabled"`
	Address  string `yaml:"address"`  // receiver host:port
	Protocol string `yaml:"protocol"` // tcp (default) | udp
	Format   string `yaml:"format"`   // adm-cid (default) | sia-dcs
	Account  string `yaml:"account"`  // 3-16 hex digits, from the ARC
	Receiver string `yaml:"receiver"` // R field, 1-6 hex digits; empty omits it
	Line     string `yaml:"line"`     // L field, 1-6 hex digits; default 0
	Group    int    `yaml:"group"`    // Contact ID group / SIA ri, 0-99
	// KeyFile holds the AES-128/192/256 key as 32/48/64 hex digits; mode 0600 (S4).
	KeyFile    string   `yaml:"key_file"`
	LinkTest   Duration `yaml:"link_test"`   // NULL message interval; 0 turns it off
	Timeout    Duration `yaml:"timeout"`     // wait for ACK per attempt (default 10s)
	Backoff    Duration `yaml:"backoff"`     // first wait before a retry (default 1s)
	MaxBackoff Duration `yaml:"max_backoff"` // the wait doubles up to this (default 60s)
	// Zones maps rooms whose name is not a 1-3 digit number to a DC-09 zone.
	Zones map[string]int `yaml:"zones"`
}

var (
	hexAccount = regexp.MustCompile(`^[0-9A-Fa-f]{3,16}$`)
	hexField   = regexp.MustCompile(`^[0-9A-Fa-f]{1,6}$`)
)

// ReadKey reads and checks the ARC key file; nil without one.
func (a *ARC) ReadKey() ([]byte, error) {
	if a.KeyFile == "" {
		return nil, nil
	}
	fi, err := os.Stat(a.KeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("the key file does not exist: give the path of the file with the ARC's key (relative to this file)")
	}
	if err != nil {
		return nil, errors.New("the key file cannot be read: check its owner and mode")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the key file is readable by others (mode %04o): chmod 600 it", fi.Mode().Perm())
	}
	b, err := os.ReadFile(a.KeyFile)
	if err != nil {
		return nil, errors.New("the key file cannot be read: check its owner and mode")
	}
	k, err := dc09.ParseKey(string(b))
	if err != nil {
		// Never the key's text: only what is wrong with it.
		return nil, errors.New("the key file must hold 32, 48 or 64 hex digits (AES-128/192/256)")
	}
	return k, nil
}

// arc validates the arc section (only when enabled).
func (v *validator) arc() {
	a := &v.c.ARC
	if !a.Enabled {
		return
	}
	if _, port, err := net.SplitHostPort(a.Address); err != nil || port == "" {
		v.errorf("arc.address", "must be host:port of the ARC's receiver, e.g. %q", "arc.example.net:7777")
	}
	switch a.Protocol {
	case "", "tcp", "udp":
	default:
		v.errorf("arc.protocol", "must be tcp or udp, not %q", a.Protocol)
	}
	switch a.Format {
	case "", "adm-cid", "sia-dcs":
	default:
		v.errorf("arc.format", "must be adm-cid (Contact ID) or sia-dcs, not %q", a.Format)
	}
	if !hexAccount.MatchString(a.Account) {
		v.errorf("arc.account", "must be the 3-16 hex digits the ARC assigned, e.g. %q", "1234")
	}
	if a.Receiver != "" && !hexField.MatchString(a.Receiver) {
		v.errorf("arc.receiver", "must be 1-6 hex digits, or left out")
	}
	if a.Line != "" && !hexField.MatchString(a.Line) {
		v.errorf("arc.line", "must be 1-6 hex digits, or left out (0)")
	}
	if a.Group < 0 || a.Group > 99 {
		v.errorf("arc.group", "must be between 0 and 99")
	}
	if _, err := a.ReadKey(); err != nil {
		v.errorf("arc.key_file", "%v", err)
	}
	v.notNegative("arc.link_test", a.LinkTest)
	v.notNegative("arc.timeout", a.Timeout)
	v.notNegative("arc.backoff", a.Backoff)
	v.notNegative("arc.max_backoff", a.MaxBackoff)
	for room, z := range a.Zones {
		if z < 0 || z > 999 {
			v.errorf("arc.zones."+room, "must be a zone number 0-999")
		}
	}
	for _, t := range v.c.Transmitters {
		if t.Room == "" {
			continue
		}
		if _, ok := a.Zones[t.Room]; ok {
			continue
		}
		if n, err := strconv.Atoi(t.Room); err == nil && n >= 0 && len(t.Room) <= 3 {
			continue
		}
		v.errorf("arc.zones", "room %q (transmitter %s) has no zone: a room whose name is not 1-3 digits needs an entry, or the ARC cannot place the alarm", t.Room, t.ID)
	}
}
