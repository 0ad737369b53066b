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
	// ProxyCommand is -o ProxyCommand= from the ssh args, verbatim (%h and
	// %p unexpanded). A transport that cannot run it must refuse the host
	// rather than connect directly.
	ProxyCommand string
	// StrictHostKeyChecking is "", "yes", "no", "ask" or "accept-new", from
	// -o StrictHostKeyChecking= in the ssh args; "no" when
	// ansible_host_key_checking is false (Ansible then passes it first).
	StrictHostKeyChecking string
	// UserKnownHostsFiles from -o UserKnownHostsFile= in the ssh args (one
	// option may list several files), ~ expanded.
	UserKnownHostsFiles []string
	// ConnectTimeout from ansible_ssh_timeout/ansible_timeout, else -o
	// ConnectTimeout= in the ssh args (0 = unset).
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
