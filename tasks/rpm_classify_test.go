package tasks

import (
	"strings"
	"testing"
)

func TestClassifyRPM(t *testing.T) {
	cases := []struct {
		argv string // split on spaces; "_" stands for an empty word
		want rpmMode
	}{
		{"rpm -q iscsi-initiator-utils", rpmModeQuery},
		{"/usr/bin/rpm -qa", rpmModeQuery},
		{"rpm --query bash", rpmModeQuery},
		{"rpm -qf /usr/bin/ls", rpmModeQuery},
		{"rpm -qi bash", rpmModeQuery}, // -i after -q is --info
		{"rpm -q -i bash", rpmModeQuery},
		{"rpm -aq", rpmModeQuery},
		{"rpm -q --whatprovides iscsiadm", rpmModeQuery},
		{"rpm -q --whatrequires bash", rpmModeQuery},
		{"rpm --root /host -q bash", rpmModeQuery},
		{"rpm -r /host -q bash", rpmModeQuery},
		{"rpm --dbpath /tmp/x -qa", rpmModeQuery},
		{"rpm -qa --qf %{NAME}-e\\n", rpmModeQuery},
		{"rpm -qa --queryformat -e", rpmModeQuery}, // the format is a value, not -e
		{"rpm -qa --qf=-e", rpmModeQuery},
		{"rpm -q --define _dbpath_-i x", rpmModeQuery},
		{"rpm -D %_x_-e -q y", rpmModeQuery},
		{"rpm -q -- -e", rpmModeQuery}, // after --, words are package names
		{"rpmquery bash", rpmModeQuery},
		{"rpm -V bash", rpmModeVerify},
		{"rpm -Va", rpmModeVerify},
		{"rpm --verify bash", rpmModeVerify},
		{"rpmverify -a", rpmModeVerify},
		{"rpm -i foo.rpm", rpmModeWrite},
		{"rpm -ivh foo.rpm", rpmModeWrite},
		{"rpm -Uvh foo.rpm", rpmModeWrite},
		{"rpm -F foo.rpm", rpmModeWrite},
		{"rpm -e bash", rpmModeWrite},
		{"rpm --erase bash", rpmModeWrite},
		{"rpm --install --justdb foo.rpm", rpmModeWrite},
		{"rpm --reinstall foo.rpm", rpmModeWrite},
		{"rpm --import key.asc", rpmModeWrite},
		{"rpmkeys --import key.asc", rpmModeWrite},
		{"rpm --setperms bash", rpmModeWrite},
		{"rpm --restore bash", rpmModeWrite},
		{"rpm -qe bash", rpmModeWrite}, // nonsense: the dangerous reading wins
		{"rpm -q --rebuilddb", rpmModeDatabase},
		{"rpm --rebuilddb", rpmModeDatabase},
		{"rpm --initdb", rpmModeDatabase},
		{"rpm --verifydb", rpmModeDatabase},
		{"rpmdb --rebuilddb", rpmModeDatabase},
		{"rpmdb --exportdb", rpmModeDatabase},
		{"rpm -E %{_dbpath}", rpmModeOther},
		{"rpm --eval -q", rpmModeOther}, // the expression is a value
		{"rpm --showrc", rpmModeOther},
		{"rpm -K foo.rpm", rpmModeOther},
		{"rpm", rpmModeOther},
		{"rpmbuild -ba x.spec", rpmModeOther},
		{"yum -q install x", rpmModeOther},
		{"sh -c rpm_-q", rpmModeOther},
		{"_ -q", rpmModeOther},
	}
	for _, c := range cases {
		argv := strings.Split(c.argv, " ")
		for i, a := range argv {
			if a == "_" {
				argv[i] = ""
			}
			argv[i] = strings.ReplaceAll(argv[i], "_-", " -")
		}
		if got := classifyRPM(argv); got != c.want {
			t.Errorf("classifyRPM(%q) = %s, want %s", argv, got, c.want)
		}
	}
	if got := classifyRPM(nil); got != rpmModeOther {
		t.Errorf("classifyRPM(nil) = %s", got)
	}
}

func TestIsPackageManager(t *testing.T) {
	cases := []struct {
		comm string
		argv []string
		want bool
	}{
		{"dnf", []string{"/usr/bin/python3", "/usr/bin/dnf", "-y", "upgrade"}, true},
		{"yum", []string{"/usr/bin/python", "/usr/bin/yum", "install", "x"}, true},
		{"platform-python", []string{"/usr/libexec/platform-python", "-s", "/usr/bin/dnf", "makecache"}, true},
		{"sleep", []string{"dnf", "600"}, true}, // exec -a dnf
		{"dnf", nil, true},                      // exiting, command line gone
		{"dnf5", []string{"dnf5", "upgrade"}, true},
		{"microdnf", []string{"microdnf", "install", "x"}, true},
		{"packagekitd", []string{"/usr/libexec/packagekitd"}, true},
		{"zypper", []string{"zypper", "in", "x"}, true},
		{"python3", []string{"python3", "/opt/app/server.py"}, false},
		{"python3", []string{"python3", "-c", "print(1)"}, false},
		{"bash", []string{"bash", "/root/dnf-wrapper.sh"}, false},
		{"rpm", []string{"rpm", "-i", "x.rpm"}, false}, // a transaction, told apart by classifyRPM
		{"sshd", []string{"sshd: root@pts/0"}, false},
	}
	for _, c := range cases {
		p := &Process{Comm: c.comm, Argv: c.argv}
		if got := isPackageManager(p); got != c.want {
			t.Errorf("isPackageManager(comm %q, argv %q) = %v, want %v", c.comm, c.argv, got, c.want)
		}
	}
}
