package config

// Every driver is known to the configuration: a transmitter's driver keys are decoded
// into and checked by its driver (drivers.Register).
import _ "github.com/vakt/vakt/drivers/all"
