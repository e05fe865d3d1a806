package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RunWithSluice is a TestMain for packages that run the sluice command:
// it builds cmd/sluice (from a package two levels below the module root)
// into a temporary folder, sets *bin to the binary, runs the tests, and
// exits with their code.
func RunWithSluice(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "sluice-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "build sluice: %v\n", err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "sluice")
	if out, err := exec.Command("go", "build", "-o", *bin, "../../cmd/sluice").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sluice: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
