"""A test exchange package that lives outside framework/: it registers itself and is used
through ``[exchange] module = "tests.fakex.spec"``, with no core file knowing it."""
