package riverflink;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.StreamReadConstraints;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;
import org.apache.flink.types.Row;

import java.io.IOException;
import java.math.BigInteger;

/**
 * Each JSON line, paired with the entity key it holds: {@code Row(key, value)}.
 *
 * <p>Why in Java: event lines are routed to their key's learner before any Python runs, in
 * the source's thread, so the learner's interpreter does nothing but learn (a Python key
 * selector would compete with it for the GIL) and no SQL planner is paid for at start-up.
 * Output lines bound for Kafka get their record key the same way.
 *
 * <p>The key is the one Python's {@code json.loads} and {@code str()} give: the last
 * top-level {@code "key"} of the object, a string as it is, an integer written in full.
 * A line with no such key (not JSON, not an object, a null, float, bool or nested key, a
 * Kafka tombstone) gets {@code missing}. For routing that is {@code ""} ({@code
 * operators.keying.UNROUTABLE}, never a valid event key), where the learner turns the line into a
 * dead letter with the exact reason; the learner decodes every line itself and refuses one
 * whose key differs from the one it was routed by, so this only has to agree with Python on
 * valid events.
 */
public class KeyOfLine implements MapFunction<String, Row>, ResultTypeQueryable<Row> {

    private static final long serialVersionUID = 1L;

    /**
     * What Python reads: NaN and Infinity, strings of any length (a model snapshot's), and
     * integers of up to 4,300 digits ({@code sys.int_info.default_max_str_digits}).
     */
    private static final JsonFactory JSON =
            JsonFactory.builder()
                    .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
                    .streamReadConstraints(
                            StreamReadConstraints.builder()
                                    .maxStringLength(Integer.MAX_VALUE)
                                    .maxNumberLength(4300)
                                    .build())
                    .build();

    private final String missing;

    /** @param missing the key of a line without one: {@code ""} to route events, null for Kafka outputs */
    public KeyOfLine(String missing) {
        this.missing = missing;
    }

    @Override
    public Row map(String line) {
        String key = keyOf(line);
        return Row.of(key == null ? missing : key, line);
    }

    /** The key of {@code line}, or null. */
    public static String keyOf(String line) {
        if (line == null) {
            return null;
        }
        try (JsonParser parser = JSON.createParser(line)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            String key = null;
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                boolean isKey = "key".equals(parser.currentName());
                JsonToken value = parser.nextToken();
                if (isKey) { // a later "key" wins, as in json.loads
                    key = scalarKey(parser, value);
                } else {
                    parser.skipChildren();
                }
            }
            return parser.nextToken() == null ? key : null; // anything after the object: not JSON to Python
        } catch (IOException notJson) { // the learner reports exactly what is wrong with it
            return null;
        }
    }

    private static String scalarKey(JsonParser parser, JsonToken value) throws IOException {
        if (value == JsonToken.VALUE_STRING) {
            return parser.getText();
        }
        if (value == JsonToken.VALUE_NUMBER_INT) {
            return new BigInteger(parser.getText()).toString(); // as str(int) writes it: "-0" is "0"
        }
        parser.skipChildren();
        return null;
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return Types.ROW_NAMED(new String[] {"key", "value"}, Types.STRING, Types.STRING);
    }
}
