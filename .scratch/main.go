package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-cdc/sluice/internal/testenv"
)

func main() {
	m, err := testenv.NewMariaDB(context.Background(), testenv.MariaDBOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Socket(), m.Port)
	os.WriteFile("/tmp/values-scratch.sock", []byte(m.Socket()), 0o644)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	<-c
	m.Close()
}
