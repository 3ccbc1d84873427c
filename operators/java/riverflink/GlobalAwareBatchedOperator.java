package riverflink;

import org.apache.flink.api.common.state.BroadcastState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.typeinfo.BasicTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.streaming.api.functions.python.DataStreamPythonFunctionInfo;
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

import java.util.ArrayList;
import java.util.Map;
import java.util.TreeMap;

/**
 * The batched learner with a second, broadcast input: the versions of the global model.
 *
 * <p>Why: Flink 2 has no loops in a DataStream graph, so the global model learns in its own
 * operator beside the learner, and every learner subtask needs its versions. A version is a
 * {@code Row(version LONG, learned until LONG, model BYTES)}: its learn steps so far, the
 * latest event time it learned from (ms; {@code Long.MIN_VALUE} when unknown) and its envelope.
 *
 * <p>Which version answers an event is Python's choice, by the event's time: the newest that
 * learned only from earlier events, so that a backfill, where the global operator reads ahead
 * of the learner, answers each event as a live stream would have. So this operator holds every
 * version no event to come may need, in operator broadcast state (checkpointed; a subtask added
 * by a rescale starts from a copy), from version 0 (the global model as it started, whose bytes
 * Python has) until Python releases them ({@link Context#releaseGlobalBefore}). Python asks
 * which versions are held once per batch, and for a version's bytes only when it changes.
 *
 * <p>Python is never called for a version: the lines that came before it are handed over
 * first. A version no newer than the newest held (an in-flight copy restored from an
 * unaligned checkpoint) is dropped. A two-input task ends each input on its own and calls
 * {@code endInput()} once per input; the learner writes back and closes Python only when both
 * have ended, whichever ends first.
 */
public class GlobalAwareBatchedOperator extends BatchedPythonKeyedProcessOperator
        implements TwoInputStreamOperator<Row, Row, String> {

    private static final long serialVersionUID = 1L;

    /** Part of the savepoint contract: the versions a learner holds, and when each learned until. */
    static final MapStateDescriptor<Long, byte[]> GLOBAL_MODELS =
            new MapStateDescriptor<>("global_models", BasicTypeInfo.LONG_TYPE_INFO,
                    PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
    static final MapStateDescriptor<Long, Long> GLOBAL_LEARNED_UNTIL =
            new MapStateDescriptor<>("global_learned_until", BasicTypeInfo.LONG_TYPE_INFO, BasicTypeInfo.LONG_TYPE_INFO);

    private static final byte[] STARTING_MODEL = new byte[0];

    private transient BroadcastState<Long, byte[]> models;
    private transient BroadcastState<Long, Long> learnedUntil;
    private transient TreeMap<Long, Long> held; // version -> learned until: what Python is shown
    private transient volatile long newest; // read by metric reporters
    private transient volatile int count;
    private transient int inputsEnded;

    public GlobalAwareBatchedOperator(
            Configuration config,
            DataStreamPythonFunctionInfo pythonFunctionInfo,
            TypeInformation<Row> batchTypeInfo,
            TypeInformation<String> outputTypeInfo,
            int maxLines,
            long maxDelayMs,
            String[] liveKeyStates) {
        super(config, pythonFunctionInfo, batchTypeInfo, outputTypeInfo, maxLines, maxDelayMs, liveKeyStates);
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        models = context.getOperatorStateStore().getBroadcastState(GLOBAL_MODELS);
        learnedUntil = context.getOperatorStateStore().getBroadcastState(GLOBAL_LEARNED_UNTIL);
        inputsEnded = 0; // set here: a transient field's initializer does not run on a TaskManager
        held = new TreeMap<>();
        for (Map.Entry<Long, Long> entry : learnedUntil.entries()) {
            held.put(entry.getKey(), entry.getValue());
        }
        if (held.isEmpty()) {
            hold(0L, Long.MIN_VALUE, STARTING_MODEL);
        }
        newest = held.lastKey();
        count = held.size();
        if (context.isRestored()) {
            LOG.info("global model versions {} to {} restored", held.firstKey(), newest);
        }
    }

    private void hold(long version, long until, byte[] model) throws Exception {
        models.put(version, model);
        learnedUntil.put(version, until);
        held.put(version, until);
    }

    @Override
    public void open() throws Exception {
        Gauge<Long> version = () -> newest;
        Gauge<Integer> versions = () -> count;
        getMetricGroup().gauge("global_version", version);
        getMetricGroup().gauge("global_versions_held", versions);
        super.open();
    }

    @Override
    public void processElement1(StreamRecord<Row> element) throws Exception {
        processElement(element);
    }

    @Override
    public void processElement2(StreamRecord<Row> element) throws Exception {
        Row row = element.getValue();
        long version = (Long) row.getField(0);
        if (version <= held.lastKey()) {
            return;
        }
        flush();
        hold(version, (Long) row.getField(1), (byte[]) row.getField(2));
        newest = version;
        count = held.size();
    }

    @Override
    public void endInput() {
        if (++inputsEnded == 2) {
            super.endInput();
        }
    }

    @Override
    protected long[] heldGlobalVersions() {
        long[] pairs = new long[2 * held.size()];
        int i = 0;
        for (Map.Entry<Long, Long> entry : held.entrySet()) {
            pairs[i++] = entry.getKey();
            pairs[i++] = entry.getValue();
        }
        return pairs;
    }

    @Override
    protected byte[] heldGlobalModel(long version) {
        byte[] model;
        try {
            model = models.get(version);
        } catch (Exception e) {
            throw new RuntimeException("reading global model version " + version, e);
        }
        if (model == null) {
            throw new IllegalStateException("global model version " + version + " is not held");
        }
        return model;
    }

    @Override
    protected void releaseGlobalVersionsBefore(long version) {
        try {
            for (Long old : new ArrayList<>(held.headMap(version).keySet())) {
                models.remove(old);
                learnedUntil.remove(old);
                held.remove(old);
            }
        } catch (Exception e) {
            throw new RuntimeException("releasing global model versions before " + version, e);
        }
        count = held.size();
    }
}
