package serial

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vakt/vakt/drivers"
)

// The values a port's line settings accept: the configuration's checks, New and
// Monitor all use these lists.
var (
	Bauds    = []int{300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}
	DataBits = []int{7, 8}
	Parities = []string{"none", "even", "odd"}
	StopBits = []int{1, 2}
	Roles    = []string{RoleSlave, RoleControlStation}
)

// MaxGuardTime bounds the guard time: small against the 2 s reply time.
const MaxGuardTime = time.Second

// Line is a port's configured line settings, as written in drivers.serial.
type Line struct {
	Baud, DataBits int
	Parity         string
	StopBits       int
	Role           string
	Address, Peer  string
	GuardTime      time.Duration
}

// Check reports what is wrong with the settings, at the keys of a drivers.serial
// entry (baud, data_bits, parity, stop_bits, role, address, peer, guard_time).
func (l Line) Check(report drivers.Report) {
	if !slices.Contains(Bauds, l.Baud) {
		report("baud", "%d is not a supported rate; use one of %s", l.Baud, joinInts(Bauds))
	}
	if !slices.Contains(DataBits, l.DataBits) {
		report("data_bits", "%d: use 7 (ESPA standard) or 8", l.DataBits)
	}
	oneOf(report, "parity", l.Parity, Parities)
	if !slices.Contains(StopBits, l.StopBits) {
		report("stop_bits", "%d: use 1 or 2 (ESPA standard: 2)", l.StopBits)
	}
	oneOf(report, "role", l.Role, Roles)
	addrOK := stationAddress(report, "address", l.Address)
	peerOK := stationAddress(report, "peer", l.Peer)
	if addrOK && peerOK && l.Address == l.Peer {
		report("peer", "the call system's address must differ from ours (address %q)", l.Address)
	}
	if l.GuardTime < 0 || l.GuardTime > MaxGuardTime {
		report("guard_time", "%s: use 0s to %s (default %s)", l.GuardTime, MaxGuardTime, DefaultGuardTime)
	}
}

func oneOf(report drivers.Report, key, value string, allowed []string) {
	switch {
	case value == "":
		report(key, "required: the %s, one of %s", key, strings.Join(allowed, ", "))
	case !slices.Contains(allowed, value):
		report(key, "unknown %s %s; use one of %s", key, drivers.Quote(value), strings.Join(allowed, ", "))
	}
}

func stationAddress(report drivers.Report, key, a string) bool {
	if _, err := ParseAddress(a); err != nil {
		report(key, "%s is not an ESPA station address: one digit, '0'..'9'", drivers.Quote(a))
		return false
	}
	return true
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func wantOneOf(what string, v int, allowed []int) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("%s %d: want one of %s", what, v, joinInts(allowed))
}
