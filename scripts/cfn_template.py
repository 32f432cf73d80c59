"""CloudFormation's intrinsic functions, as far as the project's scripts evaluate a template
without CloudFormation: Ref (parameters, pseudo parameters, AWS::NoValue), Fn::If, Fn::Sub and
the condition functions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition).
  scripts/rehearse-deploy.py  renders the destination bucket policy (the emulator's
                              CloudFormation does not implement AWS::S3::BucketPolicy)
  scripts/examples.py         resolves the ECS task definition's Environment
Run with the tools' Python (cfn-lint's template decoder)."""

import re
from pathlib import Path

# What Ref AWS::NoValue evaluates to: the property, list item or map entry is dropped.
NO_VALUE = object()


class NotEvaluated(Exception):
    """The template uses something this evaluator does not do, or lacks a parameter."""


def load(path):
    """The template decoded as CloudFormation reads it (short-form tags made long)."""
    from cfnlint.decode import decode_str

    doc, problems = decode_str(Path(path).read_text())
    if problems:
        raise NotEvaluated(f"{path} does not parse: {problems}")
    return doc


class Template:
    """One template over one set of parameter values. Parameters are strings, as CloudFormation
    passes them; one with neither a value nor a default cannot be referenced."""

    def __init__(self, doc, params, pseudo=None):
        self.doc = doc
        self.params = {
            name: str(spec["Default"])
            for name, spec in (doc.get("Parameters") or {}).items()
            if "Default" in spec
        }
        self.params.update(params)
        self.params.update(pseudo or {})

    def condition(self, name):
        return self.truth(self.doc["Conditions"][name])

    def truth(self, expr):
        (fn, args), = expr.items()
        if fn == "Fn::Equals":
            return self.value(args[0]) == self.value(args[1])
        if fn == "Fn::Not":
            return not self.truth(args[0])
        if fn == "Fn::And":
            return all(self.truth(a) for a in args)
        if fn == "Fn::Or":
            return any(self.truth(a) for a in args)
        if fn == "Condition":
            return self.condition(args)
        raise NotEvaluated(f"condition function {fn} is not evaluated")

    def value(self, v):
        if isinstance(v, list):
            return [x for x in (self.value(x) for x in v) if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (fn, args), = v.items()
            if fn == "Ref":
                if args == "AWS::NoValue":
                    return NO_VALUE
                if args not in self.params:
                    raise NotEvaluated(f"Ref {args}: no value for this parameter")
                return self.params[args]
            if fn == "Fn::If":
                return self.value(args[1] if self.condition(args[0]) else args[2])
            if fn == "Fn::Sub":
                text, names = (args, {}) if isinstance(args, str) else args
                names = {k: self.value(x) for k, x in names.items()}

                def one(m):
                    key = m.group(1)
                    return str(names[key] if key in names else self.value({"Ref": key}))

                return re.sub(r"\$\{([^}!]+)\}", one, text)
        return {k: x for k, x in ((k, self.value(x)) for k, x in v.items()) if x is not NO_VALUE}

    def properties(self, logical_id):
        return self.value(self.doc["Resources"][logical_id]["Properties"])
