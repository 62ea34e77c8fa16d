"""Exchange packages. Each ``framework/exchanges/<name>/`` holds everything specific to one
exchange (signer, client, errors, limits); the core never imports them."""
