"""Populations: `population B[joint = 5] : Graded(tau = 10 ms)` or `population N : Leaky from net`, their neuron
models built once per set of arguments, and a connectome's synapses wired onto its population."""

from __future__ import annotations

from circuitdsl import ast
from circuitdsl.elaborate import connectome as data
from circuitdsl.elaborate.evaluate import BUILTINS, Abort
from circuitdsl.elaborate.network import Frame, Network, poisoned
from circuitdsl.elaborate.neurons import NeuronBuilder, bind_arguments, model_key, plain, unit_parameters
from circuitdsl.elaborate.projections import new_projection_id
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.shapes import checked_size, declared_shape, unit_count
from circuitdsl.elaborate.values import Definition, Namespace, PopulationRef, describe
from circuitdsl.errors import Problem, did_you_mean
from circuitdsl.ir import model as ir
from circuitdsl.units import DIMENSIONLESS


def declare_population(net: Network, frame: Frame, s: ast.PopulationDecl, scope: Scope) -> None:
    """Each name of the statement a population of the model; a name that fails is poisoned, the others stand."""
    model = _model(net, s.model, scope)
    connectome = _connectome(net, s, scope)
    for pop in s.names:
        try:
            shape = declared_shape(net, pop.shape, scope) if connectome is None else data.population_shape(connectome)
            checked_size(net, shape, pop.span)
            if net.winners.get(model.name, 0) > unit_count(shape):  # topk(k) of fewer units fails at run time
                raise net.evaluator.fail("E302", f"{model.name} keeps the k = {net.winners[model.name]} largest "
                                         f"outputs, but '{pop.name.name}' has {unit_count(shape)} units",
                                         s.model.span)
        except Abort:
            frame.scope.names.setdefault(pop.name.name, poisoned(pop.name.span))
            continue
        if _add(net, frame, pop, shape, model) and connectome is not None:
            _wire_connectome(net, frame, connectome, frame.prefix + pop.name.name, model, s)


def _add(net: Network, frame: Frame, pop: ast.PopName, shape: tuple[ir.Axis, ...], model: ir.NeuronModel) -> bool:
    """Define the population and record it with its units' own parameters; False if its name is taken."""
    name = frame.prefix + pop.name.name
    ref = PopulationRef(name, shape, None, model.name)
    if not frame.scope.define(pop.name.name, ref, pop.name.span, "population", net.reporter):
        return False
    net.counts.units += checked_size(net, shape, pop.span)
    net.evaluator.ref_shapes[name] = shape
    frame.populations[pop.name.name] = ref
    net.populations.append(ir.Population(name=name, shape=list(shape), model=model.name, args=model.args,
                                         instance=frame.instance, span=pop.span))
    classes = shape[0].classes if len(shape) == 1 else None
    try:
        net.data_parameters.extend(unit_parameters(name, unit_count(shape), model, classes, pop.span))
    except Problem as error:
        raise net.evaluator.fail(error.code, error.message, pop.span, list(error.notes)) from None
    return True


def _connectome(net: Network, s: ast.PopulationDecl, scope: Scope) -> data.Connectome | None:
    """The connectome of `population N : Model from net`, checked: one population, no shape, used once."""
    if s.source is None:
        return None
    ev = net.evaluator
    connectome = ev.eval(s.source, scope)
    if not isinstance(connectome, data.Connectome):
        raise ev.fail("E206", f"a population is made from a connectome, not from {describe(connectome)}",
                      s.source.span, ["net = celegans.connectome(\"Cook2019Herm\", neurons = {AVA, AVB}, sign = c302)"])
    if len(s.names) != 1 or s.names[0].shape is not None:
        raise ev.fail("E304", "a population from a connectome is one name without a shape", s.span,
                      ["its units are the selected neurons: population N : Leaky from net"])
    if connectome.populated:
        raise ev.fail("E202", f"this connectome already made the population '{connectome.populated[0]}'",
                      s.source.span)
    return connectome


def _wire_connectome(net: Network, frame: Frame, connectome: data.Connectome, name: str, model: ir.NeuronModel,
                     s: ast.PopulationDecl) -> None:
    """A connectome's synapses: one projection and one parameter per kind, onto its population."""
    synapses = sum(len(kind.synapses.pre) for kind in connectome.kinds)
    if net.counts.synapses + synapses > net.limits.synapses:
        raise net.evaluator.fail("E703", f"{synapses} more synapses make {net.counts.synapses + synapses}, "
                                 f"{net.limits.over('synapses')}", s.span, [net.limits.hint("synapses")])
    net.counts.synapses += synapses
    connectome.populated.append(name)
    frame.scope.names[s.names[0].name.name].used = True  # its own synapses read it
    port = model.inputs[0].name
    ids = {kind.name: new_projection_id(net, ir.Ref(source=name), "<->" if kind.name == "electrical" else "->", name)
           for kind in connectome.kinds}
    parameters, projections = data.weights(connectome, name, ids, port, net.model_inputs[model.name][port],
                                           net.output_dims.get(model.name, DIMENSIONLESS), connectome.span,
                                           net.reporter)
    net.data_parameters.extend(parameters)
    net.pending.extend(projections)
    label = s.source.id if isinstance(s.source, ast.Name) else name
    net.sources.append(data.data_source(connectome, label, name))


def _model(net: Network, ref: ast.ModelRef, scope: Scope) -> ir.NeuronModel:
    """The neuron model a population names, built once for each set of arguments (and each defining file)."""
    ev = net.evaluator
    head = _dotted(net, ref.path, scope)
    if not isinstance(head, Definition) or head.kind != "neuron":
        raise ev.fail("E206", f"'{ref.path[-1].name}' is {describe(head)}, not a neuron model", ref.span)
    given = [(a.name, ev.eval(a.value, scope, expect=_arg_type(head, a, i)), a.span)
             for i, a in enumerate(ref.args or ())]
    args = bind_arguments(ev, head, given, Scope(parent=head.module.scope), ref.span)
    key = model_key(head.name, {k: plain(v) for k, v in args.items()})
    if key in net.neurons and net.neurons[key].span != head.node.span:  # a namesake from another file
        key = f"{head.module.name}:{key}"
    if key not in net.neurons:
        builder = NeuronBuilder(ev, head, args, key)
        ev.winners = 0
        net.neurons[key] = builder.build()
        net.winners[key] = ev.winners
        net.output_dims[key] = builder.output_dim or DIMENSIONLESS
        ev.output_axes[key] = tuple(net.neurons[key].output_shape)
        net.model_inputs[key] = builder.input_dims
    return net.neurons[key]


def _dotted(net: Network, path: tuple[ast.Ident, ...], scope: Scope) -> object:
    """`Graded` or `lib.Graded`: a name, then members of imported modules."""
    ev = net.evaluator
    if len(path) == 1 and scope.lookup(path[0].name) is None and path[0].name not in BUILTINS:
        models = [n for n in scope.visible_names() if (b := scope.lookup(n)) is not None
                  and isinstance(b.value, Definition) and b.value.kind == "neuron"]
        raise ev.fail("E207", f"unknown neuron model '{path[0].name}'", path[0].span,
                      [did_you_mean(path[0].name, models)])
    value = ev.eval(ast.Name(path[0].span, path[0].name), scope)
    for ident in path[1:]:
        if not isinstance(value, Namespace):
            raise ev.fail("E206", f"{describe(value)} has no members", ident.span)
        binding = value.module.scope.names.get(ident.name)
        if binding is None:
            raise ev.fail("E207", f"'{value.name}' has no definition '{ident.name}'", ident.span,
                          [did_you_mean(ident.name, value.module.scope.names)])
        value = binding.value
    return value


def _arg_type(definition: Definition, arg: ast.Arg, position: int) -> str | None:
    """The declared type of the parameter an argument binds (None when it binds none)."""
    params = definition.node.params
    if arg.name is not None:
        return next((p.type.name for p in params if p.name.name == arg.name.name), None)
    return params[position].type.name if position < len(params) else None
