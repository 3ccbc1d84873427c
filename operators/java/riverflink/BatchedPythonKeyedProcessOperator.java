package riverflink;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.runtime.event.WatermarkEvent;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.SimpleTimerService;
import org.apache.flink.streaming.api.TimerService;
import org.apache.flink.streaming.api.functions.python.DataStreamPythonFunctionInfo;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.Output;
import org.apache.flink.streaming.api.operators.TimestampedCollector;
import org.apache.flink.streaming.api.operators.python.embedded.AbstractEmbeddedDataStreamPythonFunctionOperator;
import org.apache.flink.streaming.api.operators.python.embedded.EmbeddedPythonKeyedProcessOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.LatencyMarker;
import org.apache.flink.streaming.runtime.streamrecord.RecordAttributes;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.stream.Stream;

/**
 * PyFlink's thread-mode keyed process operator, handing Python its records in batches.
 *
 * <p>Why: in thread mode every record costs a call from Java into Python, a chain of
 * generators on the Python side and a call back for the current key, whatever the function
 * does with it. This operator gathers the {@code Row(key, line)} records it receives and
 * hands Python one {@code Row(first key, Row(keys[], lines[]))} per batch; the Python
 * function calls {@link Context#select} before each line, so keyed state and timers are
 * the line's key's, exactly as if the line had come alone.
 *
 * <p>A batch never outlives the moment a record would have been processed without it: it
 * goes to Python when it is full, {@code maxDelayMs} after its first line, and before
 * anything that must see every earlier record: a checkpoint barrier (so a checkpoint holds
 * every line that came before it, and no other), a watermark (which fires event-time
 * timers), a user timer, and the end of the input.
 *
 * <p>Before a checkpoint barrier and at the end of the input, Python also gets an empty
 * batch: the function may keep changes in Python between barriers, and writes them to keyed
 * state then, so the checkpoint holds every key exactly as of the barrier.
 *
 * <p>Outputs come back in batches too: each string the function returns may hold several
 * output lines, joined by {@code '\n'} (JSON lines never hold a raw one), and leaves this
 * operator as one record per line.
 *
 * <p>It also keeps the {@code keys_live} gauge: how many keys hold state in this subtask. A
 * restored subtask counts the keys of the named states once, as it starts (8 bytes per key
 * for the moment it counts); from then on Python reports the keys it adds and removes, with
 * a batch ({@link Context#keysChanged}), as only it knows when a key's state begins and ends.
 */
public class BatchedPythonKeyedProcessOperator extends EmbeddedPythonKeyedProcessOperator<Row, Row, String> {

    private static final long serialVersionUID = 1L;

    /** What an empty batch names as its first key: it has none. */
    private static final String NO_KEY = "";

    private final int maxLines;
    private final long maxDelayMs;
    private final String[] liveKeyStates;

    private transient ArrayList<String> keys;
    private transient ArrayList<String> lines;
    private transient boolean flushScheduled;
    private transient boolean inputEnded;
    private transient Context context;
    private transient volatile long keysLive; // written by the task's thread, read by metric reporters

    /**
     * @param batchTypeInfo what Python receives: {@code Row(STRING, Row(STRING[], STRING[]))}
     * @param liveKeyStates the keyed states (by name) of which a key with state holds at least one
     */
    public BatchedPythonKeyedProcessOperator(
            Configuration config,
            DataStreamPythonFunctionInfo pythonFunctionInfo,
            TypeInformation<Row> batchTypeInfo,
            TypeInformation<String> outputTypeInfo,
            int maxLines,
            long maxDelayMs,
            String[] liveKeyStates) {
        super(config, pythonFunctionInfo, batchTypeInfo, outputTypeInfo);
        if (maxLines < 1 || maxDelayMs < 0) {
            throw new IllegalArgumentException(
                    "a batch holds at least one line and waits zero or more ms, not "
                            + maxLines + " lines and " + maxDelayMs + " ms");
        }
        this.maxLines = maxLines;
        this.maxDelayMs = maxDelayMs;
        this.liveKeyStates = liveKeyStates.clone();
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        if (context.isRestored()) {
            long started = System.nanoTime();
            keysLive = countKeys();
            LOG.info("{} keys restored with state (keys_live), counted in {} ms",
                    keysLive, (System.nanoTime() - started) / 1_000_000);
        }
    }

    /**
     * The distinct keys of {@link #liveKeyStates} in this subtask's state, by 64-bit hashes of the
     * keys' text: 8 bytes a key instead of a set of key objects (a collision among a million keys
     * has a chance of about 3e-8, and would count two keys as one).
     */
    private long countKeys() throws Exception {
        long[] hashes = new long[1024];
        int n = 0;
        for (String state : liveKeyStates) {
            try (Stream<Object> keys = getKeyedStateBackend().getKeys(state, VoidNamespace.INSTANCE)) {
                for (Iterator<Object> it = keys.iterator(); it.hasNext(); ) {
                    if (n == hashes.length) {
                        hashes = Arrays.copyOf(hashes, 2 * n);
                    }
                    hashes[n++] = fnv1a64(String.valueOf(((Row) it.next()).getField(0)));
                }
            }
        }
        Arrays.sort(hashes, 0, n);
        long distinct = 0;
        for (int i = 0; i < n; i++) {
            if (i == 0 || hashes[i] != hashes[i - 1]) {
                distinct++;
            }
        }
        return distinct;
    }

    private static long fnv1a64(String text) {
        long hash = 0xcbf29ce484222325L;
        for (int i = 0; i < text.length(); i++) {
            hash = (hash ^ text.charAt(i)) * 0x100000001b3L;
        }
        return hash;
    }

    @Override
    public void open() throws Exception {
        keys = new ArrayList<>(maxLines);
        lines = new ArrayList<>(maxLines);
        // The same timer service the parent builds: timer services are kept by name.
        TimerService timerService =
                new SimpleTimerService(
                        getInternalTimerService("user-timers", VoidNamespaceSerializer.INSTANCE, this));
        context = new Context(timerService);
        Gauge<Long> live = () -> keysLive;
        getMetricGroup().gauge("keys_live", live);
        super.open(); // starts Python, which takes the function context: it must exist by now
        collector = new TimestampedCollector<>(new LinesOutput(output));
    }

    @Override
    public Object getFunctionContext() {
        return context;
    }

    @Override
    public void processElement(StreamRecord<Row> element) throws Exception {
        Row row = element.getValue();
        keys.add((String) row.getField(0));
        lines.add((String) row.getField(1));
        if (keys.size() >= maxLines) {
            flush();
        } else if (!flushScheduled) {
            flushScheduled = true;
            long due = getProcessingTimeService().getCurrentProcessingTime() + maxDelayMs;
            getProcessingTimeService().registerTimer(due, time -> {
                flushScheduled = false;
                flush();
            });
        }
    }

    protected final void flush() throws Exception {
        if (keys.isEmpty()) {
            return;
        }
        Row batch = Row.of(keys.get(0), Row.of(keys.toArray(new String[0]), lines.toArray(new String[0])));
        keys.clear();
        lines.clear();
        setCurrentKey(Row.of(batch.getField(0)));
        super.processElement(new StreamRecord<>(batch));
    }

    /**
     * Hand Python an empty batch: the function must bring Flink state up to date with what it holds.
     * The current key stays as it is (any key of this subtask's, or none yet): Python selects each key it writes.
     */
    private void writeBack() throws Exception {
        super.processElement(new StreamRecord<>(Row.of(NO_KEY, Row.of(new String[0], new String[0]))));
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        flush();
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        if (!inputEnded) { // else Python has closed, and wrote everything when the input ended
            flush();
            writeBack();
        }
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void endInput() {
        try {
            flush();
            writeBack();
        } catch (Exception e) {
            throw new RuntimeException("the last batch of the input failed", e);
        }
        inputEnded = true;
        super.endInput();
    }

    @Override
    public void onEventTime(InternalTimer<Row, VoidNamespace> timer) throws Exception {
        flush();
        setCurrentKey(timer.getKey()); // the batch moved the current key
        super.onEventTime(timer);
    }

    @Override
    public void onProcessingTime(InternalTimer<Row, VoidNamespace> timer) throws Exception {
        flush();
        setCurrentKey(timer.getKey());
        super.onProcessingTime(timer);
    }

    /** Without a global model: none held. */
    protected long[] heldGlobalVersions() {
        return new long[0];
    }

    protected byte[] heldGlobalModel(long version) {
        throw new IllegalStateException("this learner has no global model");
    }

    protected void releaseGlobalVersionsBefore(long version) {}

    /**
     * PyFlink fuses a Python function that follows this one into a copy, which would hand it
     * the joined lines: riverflink's graph has none, and any other graph must not.
     */
    @Override
    public <T> AbstractEmbeddedDataStreamPythonFunctionOperator<T> copy(
            DataStreamPythonFunctionInfo pythonFunctionInfo, TypeInformation<T> outputTypeInfo) {
        throw new UnsupportedOperationException(
                "the batched learner's outputs are joined lines: no Python operator may be fused after it; "
                        + "follow it with a Java operator, or disable chaining before the Python one");
    }

    /** Passes on each line of what Python returned as its own record, with the batch's timestamp. */
    private static final class LinesOutput implements Output<StreamRecord<String>> {

        private final Output<StreamRecord<String>> output;

        LinesOutput(Output<StreamRecord<String>> output) {
            this.output = output;
        }

        @Override
        public void collect(StreamRecord<String> record) {
            String lines = record.getValue();
            int start = 0;
            for (int end = lines.indexOf('\n'); end >= 0; end = lines.indexOf('\n', start)) {
                output.collect(record.replace(lines.substring(start, end)));
                start = end + 1;
            }
            output.collect(start == 0 ? record : record.replace(lines.substring(start)));
        }

        @Override
        public <X> void collect(OutputTag<X> outputTag, StreamRecord<X> record) {
            output.collect(outputTag, record);
        }

        @Override
        public void emitWatermark(Watermark mark) {
            output.emitWatermark(mark);
        }

        @Override
        public void emitWatermark(WatermarkEvent watermark) {
            output.emitWatermark(watermark);
        }

        @Override
        public void emitWatermarkStatus(WatermarkStatus watermarkStatus) {
            output.emitWatermarkStatus(watermarkStatus);
        }

        @Override
        public void emitLatencyMarker(LatencyMarker latencyMarker) {
            output.emitLatencyMarker(latencyMarker);
        }

        @Override
        public void emitRecordAttributes(RecordAttributes recordAttributes) {
            output.emitRecordAttributes(recordAttributes);
        }

        @Override
        public void close() {
            output.close();
        }
    }

    /** What Python's {@code ctx} wraps: PyFlink's keyed context, plus {@link #select}. */
    public final class Context {

        private final TimerService timerService;

        Context(TimerService timerService) {
            this.timerService = timerService;
        }

        public long timestamp() {
            return timestamp;
        }

        public TimerService timerService() {
            return timerService;
        }

        public Object getCurrentKey() {
            return ((Row) BatchedPythonKeyedProcessOperator.this.getCurrentKey()).getField(0);
        }

        /** Make {@code key} the current key: its state and timers are the ones Python reaches next. */
        public void select(String key) {
            setCurrentKey(Row.of(key));
        }

        /**
         * The global model's versions this subtask holds, oldest first, as pairs: version, then the
         * latest event time it learned from (ms; {@code Long.MIN_VALUE}: unknown). See {@link GlobalAwareBatchedOperator}.
         */
        public long[] globalVersions() {
            return heldGlobalVersions();
        }

        /** The bytes of a version held; empty for version 0, the global model as it started. */
        public byte[] globalModel(long version) {
            return heldGlobalModel(version);
        }

        /** No event to come needs a version older than {@code version}: let them go. */
        public void releaseGlobalBefore(long version) {
            releaseGlobalVersionsBefore(version);
        }

        /** {@code delta} more keys hold state in this subtask (fewer, if negative): for {@code keys_live}. */
        public void keysChanged(long delta) {
            keysLive += delta;
        }
    }
}
