package main

import (
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }
