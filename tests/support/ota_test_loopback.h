/*
 * otter TEST SUPPORT: TCP sockets on 127.0.0.1 for tests that play a server
 * or a relay (a silent listener, a slow link, a broker that drops connections).
 * Plain POSIX sockets, no other library: light tests link it alone
 * (ota_test_loopback); ota_test_net.h includes it for the network tests.
 */
#ifndef OTA_TEST_LOOPBACK_H
#define OTA_TEST_LOOPBACK_H

/**
 * Find a TCP port on 127.0.0.1 that is free now (bind to port 0, read it back).
 * @return the port (1..65535), or -1 if no socket could be bound.
 */
int ota_test_free_port(void);

/**
 * Listen on 127.0.0.1 on a port the kernel chooses (bind to port 0, read it
 * back): the socket is close-on-exec (a child process started by the test does
 * not keep it) and accepts a backlog of 16 connections.
 * @param port receives the port (1..65535); untouched on failure. Not NULL.
 * @return the listening socket (the caller closes it), or -1 with a line on
 *         stderr naming the call that failed and why.
 */
int ota_test_listen_loopback(int *port);

/**
 * Connect to 127.0.0.1:port (a blocking TCP socket, close-on-exec).
 * @param port the port.
 * @return the connected socket (the caller closes it), or -1 (errno set) when
 *         nothing accepts there; nothing is printed, as a test may expect that.
 */
int ota_test_connect_loopback(int port);

#endif /* OTA_TEST_LOOPBACK_H */
