package serial

import "github.com/vakt/vakt/drivers"

var _ drivers.Source = (*Port)(nil)
