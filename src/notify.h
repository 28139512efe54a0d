/* systemd's readiness protocol (sd_notify) without libsystemd: one datagram to $NOTIFY_SOCKET. */
#pragma once

/* Sends state (e.g. "READY=1\nSTATUS=running") if the service manager asked for it; silently
 * does nothing otherwise (also in setuid mode, where $NOTIFY_SOCKET is not trusted).
 * Returns 0, or -errno when the socket was set but could not be reached. */
int notify_send(const char *state);
