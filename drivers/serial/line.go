package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/tarm/serial"
)

// line is the serial device as the link layer sees it; tests can fake it.
type line interface {
	io.ReadWriteCloser
	// Check reports an error when the device path no longer leads to the device
	// that was opened (adapter unplugged, or replaced by another one).
	Check() error
}

// errHangup: reads return nothing at once, again and again, as they do on a tty whose
// other end has gone (a pty whose master closed, a USB adapter mid-removal).
var errHangup = errors.New("line hung up")

func parity(s string) (serial.Parity, error) {
	switch strings.ToLower(s) {
	case "none", "n":
		return serial.ParityNone, nil
	case "even", "e":
		return serial.ParityEven, nil
	case "odd", "o":
		return serial.ParityOdd, nil
	}
	return 0, fmt.Errorf("parity %q: want one of %s", s, strings.Join(Parities, ", "))
}

func lineString(o *Options) string {
	par, _ := parity(o.Parity)
	return fmt.Sprintf("%d %d%c%d", o.Baud, o.DataBits, par, o.StopBits)
}

type tty struct {
	*serial.Port
	path string
	fi   os.FileInfo
	lock *os.File // holds the flock on the device while open
}

// Close releases the port and then its lock.
func (t *tty) Close() error {
	err := t.Port.Close()
	if t.lock != nil {
		t.lock.Close()
	}
	return err
}

// ErrInUse: another process holds the port's lock.
var ErrInUse = errors.New("in use by another process")

// lockDevice takes an exclusive flock on the device node (tarm/serial does not
// expose its descriptor, so on a second one). The gateway and serial-monitor both
// take it, so a monitor started on a port a running gateway holds is refused rather
// than stealing half of the bytes; the kernel drops it when the process dies.
func lockDevice(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open port %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("port %s: %w (a running gateway or serial-monitor): stop it first, or monitor the line through a tap on another port", path, ErrInUse)
		}
		return nil, fmt.Errorf("lock port %s: %w", path, err)
	}
	return f, nil
}

// openTTY opens the device with a read timeout: without one, tarm/serial's Close
// blocks for ever behind a pending Read.
func openTTY(o *Options) (line, error) {
	fi, err := os.Stat(o.Device)
	if err != nil {
		return nil, fmt.Errorf("open port %s: %w", o.Device, err)
	}
	par, err := parity(o.Parity)
	if err != nil {
		return nil, err
	}
	stop := serial.Stop1
	if o.StopBits == 2 {
		stop = serial.Stop2
	}
	lock, err := lockDevice(o.Device)
	if err != nil {
		return nil, err
	}
	port, err := serial.OpenPort(&serial.Config{
		Name:        o.Device,
		Baud:        o.Baud,
		Size:        byte(o.DataBits),
		Parity:      par,
		StopBits:    stop,
		ReadTimeout: readTimeout,
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open port %s: %w", o.Device, err)
	}
	t := &tty{Port: port, path: o.Device, fi: fi, lock: lock}
	if err := t.Check(); err != nil { // replaced while we opened it
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *tty) Check() error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("device gone: %w", err)
	}
	if !os.SameFile(fi, t.fi) {
		return fmt.Errorf("device %s replaced", t.path)
	}
	return nil
}

// reader reads the line and hands what arrives to data until ctx ends or the line
// fails. An idle read returns (0, io.EOF) after readTimeout: that is "nothing yet".
type reader struct {
	ln   line
	data func([]byte) error
	// idle, when set, is called after a read that returned nothing.
	idle func()
}

func (r *reader) run(ctx context.Context) error {
	buf := make([]byte, 256)
	fast := 0
	checked := time.Now()
	for ctx.Err() == nil {
		start := time.Now()
		n, err := r.ln.Read(buf)
		if n > 0 {
			fast = 0
			if err := r.data(buf[:n]); err != nil {
				return err
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			if time.Since(start) < readTimeout/4 {
				if fast++; fast >= 5 {
					return errHangup
				}
			} else {
				fast = 0
			}
			if r.idle != nil {
				r.idle()
			}
		}
		if time.Since(checked) >= devicePoll {
			checked = time.Now()
			if err := r.ln.Check(); err != nil {
				return err
			}
		}
	}
	return nil
}
