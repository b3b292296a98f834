package espa

import (
	"testing"

	"github.com/vakt/vakt/internal/deptest"
)

// TestDeps keeps the protocol package pure: the standard library and the root
// package and the driver registry (itself standard library and root only),
// transitively, for linux/arm64.
func TestDeps(t *testing.T) {
	deptest.Check(t, ".", deptest.Rule{Allow: []string{"github.com/vakt/vakt", "github.com/vakt/vakt/drivers", "github.com/vakt/vakt/drivers/espa"}})
}
