package nats

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// spool holds one message body being built: in memory up to a limit, then
// in an unlinked temporary file, so that a transaction of a million rows in
// one body (mode: transaction) never sits whole in the heap.
type spool struct {
	mem   []byte
	limit int
	file  *os.File
	w     *bufio.Writer
	size  int64
}

func newSpool(limit int) *spool { return &spool{limit: limit} }

func (s *spool) reset() error {
	s.mem = s.mem[:0]
	s.size = 0
	if s.file != nil {
		s.file.Close()
		s.file, s.w = nil, nil
	}
	return nil
}

// write appends b.
func (s *spool) write(b []byte) error {
	s.size += int64(len(b))
	if s.file == nil {
		if len(s.mem)+len(b) <= s.limit {
			s.mem = append(s.mem, b...)
			return nil
		}
		f, err := os.CreateTemp("", "sluice-msg-*.spool")
		if err != nil {
			return fmt.Errorf("spool a large message: %w", err)
		}
		os.Remove(f.Name())
		s.file, s.w = f, bufio.NewWriterSize(f, 1<<20)
		if _, err := s.w.Write(s.mem); err != nil {
			return err
		}
		s.mem = s.mem[:0]
	}
	_, err := s.w.Write(b)
	return err
}

// chunks calls fn with consecutive pieces of at most size bytes.
func (s *spool) chunks(size int, fn func(i, n int, b []byte) error) error {
	n := int((s.size + int64(size) - 1) / int64(size))
	if n == 0 {
		n = 1
	}
	if s.file == nil {
		for i := 0; i < n; i++ {
			lo := i * size
			hi := min(lo+size, len(s.mem))
			if err := fn(i, n, s.mem[lo:hi]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	r := io.NewSectionReader(s.file, 0, s.size)
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		k, err := io.ReadFull(r, buf)
		if err != nil && err != io.ErrUnexpectedEOF {
			return err
		}
		if err := fn(i, n, buf[:k]); err != nil {
			return err
		}
	}
	return nil
}
