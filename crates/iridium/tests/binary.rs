//! The `iridium` binary as a process: the missing-configuration exit, its
//! health check and SIGTERM exit as `docker stop` sends it, and its health
//! check when idle connections have taken every file descriptor (the
//! tests every resource binary gets, in `testkit::process`).

testkit::resource_binary_tests!(iridium);
