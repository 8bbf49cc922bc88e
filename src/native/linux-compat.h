/* Kernel constants that older userspace headers lack, defined here once for the addon and
 * bench/ceiling (offload-loop.h). The headers they extend come first, so a newer header's own
 * definition wins. */
#ifndef UDPTUN_LINUX_COMPAT_H
#define UDPTUN_LINUX_COMPAT_H

#include <linux/if_tun.h>
#include <linux/udp.h>
#include <linux/virtio_net.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT /* UDP GSO, Linux 4.18 */
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO /* Linux 5.0 */
#define UDP_GRO 104
#endif
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4 /* USO, Linux 6.2 */
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif
#ifndef TUN_F_USO4 /* Linux 6.2 */
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

#endif
