/* The HTTP daemon's lifecycle, for main.c. */
#ifndef SANDBOX_SERVER_H
#define SANDBOX_SERVER_H

struct MHD_Daemon;

/* Binds 127.0.0.1:port (0: ephemeral) and fills SB.port. */
struct MHD_Daemon *server_start(unsigned port);
void server_free(void);

#endif
