package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// maxSecretFile bounds a secret file; a password or key is never near this.
const maxSecretFile = 64 << 10

var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// secretResolver reads ${ENV} and file: secrets while a file is decoded.
type secretResolver struct {
	lookupEnv func(string) (string, bool)
	// dir is where relative file: paths start (the configuration file's directory).
	dir string
	// readFile is readSecretFile; tests and the fuzz target replace it.
	readFile func(path string) (string, error)
}

// resolve turns the YAML text of a Secret into its value. Its errors name the
// environment variable or file, never the value.
func (r secretResolver) resolve(s string) (Secret, error) {
	switch {
	case strings.HasPrefix(s, "${"):
		m := envRef.FindStringSubmatch(s)
		if m == nil {
			return Secret{}, errors.New("write an environment reference as ${NAME} (letters, digits and _ only)")
		}
		v, err := r.env(m[1])
		if err != nil {
			return Secret{}, err
		}
		return Secret{Value: v, From: "environment variable " + m[1]}, nil

	case strings.HasPrefix(s, "file:"):
		path, err := r.expand(s[len("file:"):])
		if err != nil {
			return Secret{}, err
		}
		if path == "" {
			return Secret{}, errors.New("file: needs a path, e.g. file:/etc/vakt/secrets/mqtt-password")
		}
		if !filepath.IsAbs(path) && r.dir != "" {
			path = filepath.Join(r.dir, path)
		}
		v, err := r.readFile(path)
		if err != nil {
			return Secret{}, err
		}
		return Secret{Value: v, From: "file " + path}, nil
	}
	return Secret{Value: s, From: "configuration file"}, nil
}

func (r secretResolver) env(name string) (string, error) {
	v, ok := r.lookupEnv(name)
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set", name)
	}
	if v == "" {
		return "", fmt.Errorf("environment variable %s is empty", name)
	}
	return v, nil
}

// expand replaces ${NAME} in a secret file's path, so that systemd credentials work:
// file:${CREDENTIALS_DIRECTORY}/mqtt-password.
func (r secretResolver) expand(path string) (string, error) {
	var missing []string
	out := os.Expand(path, func(name string) string {
		v, ok := r.lookupEnv(name)
		if !ok || v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s (in the file path) is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// readSecretFile reads a secret from a file readable by its owner only, without the
// trailing newline that editors and `echo` add.
func readSecretFile(path string) (string, error) {
	// Stat before opening: opening a FIFO (or a device) could block for ever.
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("secret file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("secret file %s has mode %04o, so other users can read it; run: chmod 600 %s", path, perm, path)
	}
	// Checking the size first also keeps away from /proc files, which claim 0 bytes
	// and may block when read.
	if st.Size() == 0 {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	if st.Size() > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than %d KiB; is it the right file?", path, maxSecretFile>>10)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than %d KiB; is it the right file?", path, maxSecretFile>>10)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return v, nil
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return "config.Secret{" + s.String() + "}" }

// MarshalText keeps encoding/json and YAML encoders from writing the value, e.g. when
// a Config is shown on the status page.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue keeps log/slog from writing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s.Value != "" }

// String formats d like time.Duration ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as "1m30s", the form UnmarshalText reads.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "30s", "2m", "25h" or "1h30m" (time.ParseDuration); negative
// durations are refused.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%s is not a duration; write e.g. \"30s\", \"2m\" or \"1h30m\"", quoteShort(s))
	}
	if v < 0 {
		return fmt.Errorf("%s: a duration cannot be negative", quoteShort(s))
	}
	*d = Duration(v)
	return nil
}
