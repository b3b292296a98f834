package espa

import "github.com/vakt/vakt/drivers"

// Name is the driver name of transmitters reached over an ESPA 4.4.4 line
// (drivers.serial ports name them in their rules and fallback).
const Name = "espa"

func init() { drivers.Register(Name, func(drivers.Settings) drivers.Driver { return transmitters{} }) }

// transmitters describes ESPA transmitters: an address and no options of their own.
type transmitters struct{}

func (transmitters) Options() any { return nil }

func (transmitters) AddressHint() string {
	return "the ESPA call address, or \"*\" for a transmitter that serial rules name"
}

func (transmitters) Check(dev drivers.Device, report drivers.Report) {
	if len(dev.Address) > MaxCallAddress && dev.Address != "*" {
		report("address", "an ESPA call address has at most %d characters", MaxCallAddress)
	}
}
