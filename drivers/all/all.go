// Package all registers every transmitter driver. A new driver is its folder under
// drivers/ plus one line here.
package all

import (
	// The drivers, one line each.
	_ "github.com/vakt/vakt/drivers/espa"
	_ "github.com/vakt/vakt/drivers/jsonmap"
	_ "github.com/vakt/vakt/drivers/shelly"
	_ "github.com/vakt/vakt/drivers/z2m"
)
