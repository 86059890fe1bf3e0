package inventory_test

import (
	"testing"

	"github.com/taquilla/taquilla/core/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
