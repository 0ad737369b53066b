# The oracle of the engine's tests: ansible-core's own Templar templates
# each of a list of strings with the given variables, as Ansible templates
# a variable. Reads {"vars": {...}, "templates": [...]} on stdin, writes one
# result per template: {"json": json.dumps(value), "type": ...},
# {"undefined": message} or {"error": class, "msg": message}.
import json
import sys

from ansible.errors import AnsibleUndefinedVariable
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

req = json.load(sys.stdin)
templar = Templar(loader=DataLoader(), variables=req["vars"])
out = []
for src in req["templates"]:
    try:
        v = templar.template(src)
        try:
            out.append({"json": json.dumps(v, sort_keys=True, indent=4), "type": type(v).__name__})
        except TypeError:
            out.append({"error": "TypeError", "msg": "not JSON: %r" % (v,)})
    except AnsibleUndefinedVariable as e:
        out.append({"undefined": str(e.message)})
    except Exception as e:
        out.append({"error": type(e).__name__, "msg": str(getattr(e, "message", e))})
json.dump(out, sys.stdout)
