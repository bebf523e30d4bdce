module wray

go 1.24
