package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that every error it returns is an
// *Error matching ErrInvalid. The seed corpus is every fixture under testdata.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"valid/*.yaml", "invalid/*.yaml"} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, "fuzz.yaml", Options{})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error %T (%v) is not an *Error matching ErrInvalid", err, err)
			}
			return
		}
		for _, s := range file.Scenarios {
			if s.TotalOrders() < 1 || s.TotalAccounts() < 1 {
				t.Fatalf("scenario %q has %d orders and %d accounts", s.Name, s.TotalOrders(),
					s.TotalAccounts())
			}
			s.Order(0)
			s.Order(s.TotalOrders() - 1)
		}
	})
}
