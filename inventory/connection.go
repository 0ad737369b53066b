package inventory

import "time"

// Connection is how nodefix reaches one host, resolved from the host's
// variables (ansible_host, ansible_port, ansible_user, ... and their legacy
// ansible_ssh_* names). Zero values mean "not set": the transport applies
// OpenSSH's defaults.
type Connection struct {
	// Type is ansible_connection: "ssh" (default, also "smart"/"paramiko"
	// mapped to ssh) or "local".
	Type string
	// Address is ansible_host, or the inventory hostname when unset.
	Address string
	// Port is ansible_port (0 = 22).
	Port int
	// User is ansible_user (empty = the current user).
	User string
	// Password is ansible_password / ansible_ssh_pass. Never logged.
	Password string
	// PrivateKeyFile is ansible_ssh_private_key_file.
	PrivateKeyFile string
	// ProxyJump is taken from -J or -o ProxyJump= in
	// ansible_ssh_common_args/ansible_ssh_extra_args: user@host:port,...
	ProxyJump string
	// StrictHostKeyChecking is "", "yes", "no" or "accept-new", from -o
	// StrictHostKeyChecking= in the ssh args.
	StrictHostKeyChecking string
	// UserKnownHostsFiles from -o UserKnownHostsFile= in the ssh args.
	UserKnownHostsFiles []string
	// ConnectTimeout from -o ConnectTimeout= or ansible_ssh_timeout (0 = unset).
	ConnectTimeout time.Duration

	// Become is ansible_become.
	Become bool
	// BecomeUser is ansible_become_user (empty = root).
	BecomeUser string
	// BecomeMethod is ansible_become_method (empty = sudo).
	BecomeMethod string
	// BecomePassword is ansible_become_password / ansible_sudo_pass.
	BecomePassword string
}
