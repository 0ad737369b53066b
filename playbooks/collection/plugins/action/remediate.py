# -*- coding: utf-8 -*-
# nodefix.longhorn.remediate: runs the nodefix binary module on a node of
# any supported architecture.
#
# A binary module in a collection is one file, for one architecture:
# Ansible would copy it to every node as it is. This action plugin runs on
# the controller instead and, for each node:
#
#   1. asks the node its OS and machine (uname), once per host and play
#      (the answer is kept as a fact tagged with the host and the play);
#   2. picks the static nodefix the collection ships for linux/amd64 or
#      linux/arm64 (files/, verified against files/SHA256SUMS), and fails
#      naming the OS and machine of any other node;
#   3. uploads it to a content-addressed path on the node
#      (~/.ansible/nodefix/<sha256>/nodefix) unless the node already holds
#      that exact binary there (sha256sum on the node decides);
#   4. runs it as Ansible runs any binary module (`nodefix ARGS_FILE`,
#      WANT_JSON) with the task's arguments plus _ansible_check_mode and
#      _ansible_diff, with become as the play says, and returns its JSON.
#
# fleet_names and fleet_identities judge the whole fleet and run nowhere
# but the controller: the nodefix for the controller's own architecture
# runs there directly, whatever the task's connection or delegate_to.
#
# Only the standard library and ansible-core are used.

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import uuid

from ansible import constants as C
from ansible.errors import AnsibleAction, AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.unsafe_proxy import wrap_var
from ansible.vars.clean import remove_internal_keys

# Generated at build time from the module's own parameter table
# (internal/module), so the names here cannot drift from the binary's.
from ansible_collections.nodefix.longhorn.plugins.module_utils.params import (
    CONTROLLER_PARAMS,
    PARAMS,
)

display = Display()

MODULE = 'nodefix.longhorn.remediate'

# The collection's root: plugins/action/remediate.py is three levels down.
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = os.path.join(COLLECTION_ROOT, 'files')

# uname -m answers → Go's architecture names, the suffix of the binaries in
# files/ (nodefix-linux-<goarch>). Only 64-bit: a 32-bit userland reports
# armv7l/armv8l/i686 and gets a clear refusal.
GOARCH = {
    'x86_64': 'amd64',
    'amd64': 'amd64',
    'aarch64': 'arm64',
    'arm64': 'arm64',
}

# The fact that caches a host's uname answer for the rest of the play.
PLATFORM_FACT = 'nodefix_longhorn_platform'

# Where the binary is kept on a node, by default: the connection user's
# ~/.ansible, as Ansible keeps its own remote_tmp. Override per host or
# play with the variable of the same name.
DEFAULT_REMOTE_DIR = '~/.ansible/nodefix'


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _shipped_binary(system, machine):
    """The collection's nodefix for a machine: (goarch, local path, sha256).

    The path is checked against files/SHA256SUMS here, every time: a
    damaged or altered installation must not reach a node.
    """
    goarch = GOARCH.get(machine) if system == 'Linux' else None
    if goarch is None:
        raise AnsibleActionFail(
            '%s: unsupported platform %s %s: this collection carries nodefix for '
            'Linux x86_64 (amd64) and Linux aarch64 (arm64) only' % (MODULE, system, machine))
    name = 'nodefix-linux-' + goarch
    path = os.path.join(FILES, name)
    sums = {}
    try:
        with open(os.path.join(FILES, 'SHA256SUMS')) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    sums[parts[1].lstrip('*')] = parts[0].lower()
    except OSError as e:
        raise AnsibleActionFail('%s: cannot read the checksums of the shipped binaries: %s' % (MODULE, e))
    want = sums.get(name)
    if want is None:
        raise AnsibleActionFail('%s: %s is not listed in %s' % (MODULE, name, os.path.join(FILES, 'SHA256SUMS')))
    try:
        got = _sha256(path)
    except OSError as e:
        raise AnsibleActionFail('%s: cannot read the shipped binary: %s' % (MODULE, e))
    if got != want:
        raise AnsibleActionFail(
            '%s: %s has sha256 %s, SHA256SUMS says %s: reinstall the collection' % (MODULE, path, got, want))
    return goarch, path, want


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # unused since Ansible 2.5; the shell's tmpdir is used instead

        args = dict(self._task.args)
        try:
            unknown = sorted(k for k in args if k not in PARAMS)
            if unknown:
                # Ansible's own wording, before anything touches the node.
                raise AnsibleActionFail('Unsupported parameters for (%s) module: %s. Supported parameters include: %s.'
                                        % (MODULE, ', '.join(unknown), ', '.join(sorted(PARAMS))))
            if CONTROLLER_PARAMS.intersection(args):
                result.update(self._run_on_controller(args, task_vars))
            else:
                result.update(self._run_on_node(args, task_vars))
        except AnsibleAction as e:
            # A refusal of ours is the task's result, not a crash.
            result.update(e.result)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    # -- the controller ---------------------------------------------------

    def _run_on_controller(self, args, task_vars):
        """fleet_names / fleet_identities: nodefix for this machine, run here."""
        uname = os.uname()
        goarch, path, digest = _shipped_binary(uname.sysname, uname.machine)
        self._update_module_args(MODULE, args, task_vars)
        workdir = tempfile.mkdtemp(prefix='nodefix-', dir=C.DEFAULT_LOCAL_TMP)
        try:
            args_path = os.path.join(workdir, 'args')
            with open(args_path, 'w') as f:
                json.dump(args, f)
            binary = path
            if not os.access(binary, os.X_OK):
                # Installed without the executable bit (not by ansible-galaxy,
                # which keeps it): run a private executable copy.
                binary = os.path.join(workdir, 'nodefix')
                shutil.copyfile(path, binary)
                os.chmod(binary, 0o700)
            proc = subprocess.run([binary, args_path], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        data = self._parse_returned_data({
            'rc': proc.returncode,
            'stdout': to_text(proc.stdout, errors='surrogate_or_replace'),
            'stderr': to_text(proc.stderr, errors='surrogate_or_replace'),
        })
        remove_internal_keys(data)
        data['nodefix_binary'] = {'where': 'controller', 'arch': goarch, 'machine': uname.machine,
                                  'path': path, 'sha256': digest, 'probed': False, 'uploaded': False}
        return wrap_var(data)

    # -- a node -----------------------------------------------------------

    def _target(self, task_vars):
        """The host this task really runs on (the delegate, if any)."""
        return self._task.delegate_to or task_vars.get('inventory_hostname')

    def _play_id(self):
        """A value unique to the play this task belongs to.

        Ansible keeps the play on the task's block (Block._play), reached
        through the task's parents (an include, a role's block). These are
        private attributes: should a future Ansible move them, None turns
        the cache off and the node is simply asked every task.
        """
        node = self._task
        while node is not None:
            play = getattr(node, '_play', None)
            if play is not None:
                return getattr(play, '_uuid', None)
            node = getattr(node, '_parent', None)
        return None

    def _platform(self, task_vars):
        """(system, machine, probed, fact): the node's uname answer.

        The answer is cached as a fact tagged with the host and the play it
        describes. The tags matter: a run_once task's facts are given to
        every host of the play, a delegated task's to the inventory host,
        and a persistent fact cache keeps facts across runs; an answer
        about another host, or from another play, is never reused.
        """
        target, play = self._target(task_vars), self._play_id()
        cached = (task_vars.get('ansible_facts') or {}).get(PLATFORM_FACT) or {}
        if play is not None and cached.get('host') == target and cached.get('play') == play:
            return cached['system'], cached['machine'], False, None
        res = self._low_level_execute_command('uname -s && uname -m', sudoable=False)
        lines = res.get('stdout', '').split()
        if res.get('rc') != 0 or len(lines) != 2:
            raise AnsibleActionFail('%s: cannot tell the OS and architecture of %s: `uname -s && uname -m` '
                                    'exited %s: %s' % (MODULE, target, res.get('rc'),
                                                       (res.get('stderr') or res.get('stdout') or '').strip()))
        system, machine = lines
        fact = None
        if play is not None:
            fact = {PLATFORM_FACT: {'host': target, 'play': play, 'system': system, 'machine': machine}}
        return system, machine, True, fact

    def _remote_dir(self, task_vars, digest):
        """The node's directory for this binary, as a shell word.

        "~" is left for the node's shell to expand, for the connection
        user (the upload runs as that user, never through become).
        """
        base = task_vars.get('nodefix_remote_dir') or DEFAULT_REMOTE_DIR
        base = to_text(base).rstrip('/')
        if base == '~':
            return '~/' + shlex.quote(digest)
        if base.startswith('~/'):
            return '~/' + shlex.quote(base[2:] + '/' + digest)
        if base.startswith('/'):
            return shlex.quote(base + '/' + digest)
        raise AnsibleActionFail('%s: nodefix_remote_dir %r must be an absolute path or start with ~/' % (MODULE, base))

    def _shell(self, script, what):
        """Run a small POSIX sh script as the connection user."""
        res = self._low_level_execute_command(script, sudoable=False)
        if res.get('rc') != 0:
            raise AnsibleActionFail('%s: %s failed (exit %s): %s' % (
                MODULE, what, res.get('rc'), (res.get('stderr') or res.get('stdout') or '').strip()))
        return res.get('stdout', '')

    def _ensure_binary(self, task_vars, local_path, digest):
        """(absolute remote path, uploaded): the node holds the binary after this.

        One command finds (and creates) the content-addressed directory and
        hashes what is there; only a missing or different file is uploaded,
        to a temporary name, hashed again on the node and renamed into place,
        so that a broken transfer never leaves a wrong `nodefix` behind.
        """
        rdir = self._remote_dir(task_vars, digest)
        out = self._shell('umask 022 && mkdir -p %s && cd %s && pwd -P && '
                          'if [ -f nodefix ]; then sha256sum nodefix; fi' % (rdir, rdir),
                          'finding the nodefix binary on the node')
        lines = out.splitlines()
        if not lines or not lines[0].startswith('/'):
            raise AnsibleActionFail('%s: unexpected answer while looking for the binary: %r' % (MODULE, out))
        absdir = lines[0].strip()
        remote = absdir + '/nodefix'
        held = len(lines) > 1 and lines[1].split()[0].lower() == digest
        host = self._play_context.remote_addr
        if held:
            display.vvv('%s: the node holds %s already' % (MODULE, remote), host=host)
            return remote, False
        display.vvv('%s: uploading %s to %s' % (MODULE, local_path, remote), host=host)

        part = '%s/.nodefix.%s.part' % (absdir, uuid.uuid4().hex)
        self._transfer_file(local_path, part)
        qpart, qremote = shlex.quote(part), shlex.quote(remote)
        self._shell(
            'got=$(sha256sum %(part)s) || { rm -f %(part)s; exit 1; }; got=${got%%%% *}; '
            'if [ "$got" != %(digest)s ]; then rm -f %(part)s; '
            'echo "the uploaded copy has sha256 $got, not %(digest)s" >&2; exit 1; fi; '
            'chmod 0755 %(part)s && mv -f %(part)s %(remote)s' % {'part': qpart, 'remote': qremote, 'digest': digest},
            'installing the nodefix binary on the node')
        return remote, True

    def _run_on_node(self, args, task_vars):
        system, machine, probed, fact = self._platform(task_vars)
        goarch, local_path, digest = _shipped_binary(system, machine)
        remote, uploaded = self._ensure_binary(task_vars, local_path, digest)
        info = {'where': 'node', 'arch': goarch, 'machine': machine, 'path': remote, 'sha256': digest,
                'probed': probed, 'uploaded': uploaded}

        # What Ansible does for any binary module: the arguments as JSON in a
        # file of the task's private tmp dir, readable by the become user.
        self._update_module_args(MODULE, args, task_vars)
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        args_path = self._connection._shell.join_path(tmpdir, 'args')
        self._transfer_data(args_path, json.dumps(args))
        binary, remote_files = remote, [tmpdir, args_path]
        if self._is_become_unprivileged():
            # The become user may not enter the connection user's home: run
            # a copy from the tmp dir, which Ansible opens to that user.
            binary = self._connection._shell.join_path(tmpdir, 'nodefix')
            self._shell('cp %s %s' % (shlex.quote(remote), shlex.quote(binary)), 'copying nodefix for the become user')
            remote_files.append(binary)
        self._fixup_perms2(remote_files)

        cmd = self._connection._shell.build_module_command(
            self._compute_environment_string(), '', binary, arg_path=args_path).strip()
        res = self._low_level_execute_command(cmd, sudoable=True)
        data = self._parse_returned_data(res)
        # Through become, ssh runs with a terminal: the shell's error may
        # be in stdout.
        output = '%s\n%s' % (res.get('stdout', ''), res.get('stderr', ''))
        if not data.get('_ansible_parsed') and 'Exec format error' in output:
            # The node said one machine and cannot run that machine's code
            # (a wrong uname, or a kernel without the 64-bit ABI): say so
            # instead of Ansible's "MODULE FAILURE".
            data['msg'] = '%s: the node reports %s (uname -m), but cannot execute the linux/%s nodefix %s: Exec format error' % (
                MODULE, machine, goarch, binary)
        remove_internal_keys(data)
        data['nodefix_binary'] = info
        if fact and not data.get('failed'):
            data.setdefault('ansible_facts', {}).update(fact)
        return wrap_var(data)
