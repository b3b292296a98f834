package mqtt_test

import (
	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/mqtt"
)

var _ drivers.Source = (*mqtt.Driver)(nil)
