module gomath

go 1.24

require wray v0.0.0

replace wray => ../../guest-sdk/go
