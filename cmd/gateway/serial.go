package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/drivers/espa"
	"github.com/vakt/vakt/drivers/serial"
)

// serialOptions translates one configured ESPA port.
func serialOptions(cfg *config.Config, i int, log *slog.Logger, clock vakt.Clock) (serial.Options, error) {
	p := cfg.Drivers.Serial[i]
	// A rule that yields an unknown transmitter (room-999) falls back instead of
	// raising an alarm nobody can locate.
	registry := map[vakt.TransmitterID]bool{}
	for _, t := range cfg.Transmitters {
		registry[vakt.TransmitterID(t.ID)] = true
	}
	known := func(id vakt.TransmitterID) bool { return registry[id] }
	o := serial.Options{
		Name: p.Name, Device: p.Device, Baud: p.Baud, DataBits: p.DataBits, Parity: p.Parity, StopBits: p.StopBits,
		Role: p.Role, StatusBlocks: p.StatusBlocks, Logger: log, Clock: clock,
		Mapper:    espa.Mapper{Fallback: vakt.TransmitterID(p.Fallback), Known: known},
		GuardTime: p.GuardTime.D(),
	}
	if o.GuardTime == 0 {
		o.GuardTime = -1 // configured 0s: no pause (serial's zero means its default)
	}
	var err error
	if o.Address, err = serial.ParseAddress(p.Address); err != nil {
		return o, fmt.Errorf("drivers.serial[%d].address: %w", i, err)
	}
	if o.Peer, err = serial.ParseAddress(p.Peer); err != nil {
		return o, fmt.Errorf("drivers.serial[%d].peer: %w", i, err)
	}
	for j, r := range p.Rules {
		rule, err := espa.NewRule(r.CallAddress, r.Text, r.Transmitter)
		if err != nil {
			return o, fmt.Errorf("drivers.serial[%d].rules[%d]: %w", i, j, err)
		}
		o.Mapper.Rules = append(o.Mapper.Rules, rule)
	}
	return o, nil
}

// cmdSerialMonitor decodes a live line for commissioning. It only listens: it never
// answers, so it can sit beside a running installation's port (through a tap) or on
// the port before the gateway takes it.
func cmdSerialMonitor(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serial-monitor", flag.ContinueOnError)
	port := fs.String("port", "", "serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
	baud := fs.Int("baud", serial.DefaultBaud, "baud rate (300..115200)")
	bits := fs.Int("data-bits", serial.DefaultDataBits, "data bits (7 or 8)")
	parity := fs.String("parity", serial.DefaultParity, "parity: "+strings.Join(serial.Parities, ", "))
	stop := fs.Int("stop-bits", serial.DefaultStopBits, "stop bits (1 or 2)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *port == "" {
		return fmt.Errorf("serial-monitor: -port is required")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	err := serial.Monitor(ctx, serial.Options{Device: *port, Baud: *baud, DataBits: *bits, Parity: *parity, StopBits: *stop}, stdout)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
