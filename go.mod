module github.com/abuse-responder/abuse-responder

go 1.26
