package main

import (
	"errors"

	"github.com/sluice-cdc/sluice/config"
)

func isConfigError(err error) bool {
	var es config.Errors
	var e config.Error
	return errors.As(err, &es) || errors.As(err, &e)
}
